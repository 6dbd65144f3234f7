//! Where a run reads and writes, decided and checked before anything is opened for writing.
//!
//! Safety by construction: the input, the output, the errors file and the run's own files
//! must be distinct files (compared after resolving links); a run writes its output and
//! errors into `NAME.partial` files beside them and renames them into place only when the
//! input is finished, so an existing output is never truncated and a failed or killed run
//! leaves earlier results as they were. Devices and pipes (`/dev/null`, a FIFO) are written
//! directly and cannot be resumed.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::checkpoint::{checkpoint_path, with_suffix};
use super::run::{default_errors_path, Input, Output, RunError, RunOptions};

/// A destination of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (documents) or standard error (bad records).
    Std,
    /// A device or pipe, written directly.
    Stream(PathBuf),
    /// A regular file, written as `partial` and renamed to `path` at the end.
    File {
        /// Where the finished file goes.
        path: PathBuf,
        /// Where it is written meanwhile.
        partial: PathBuf,
    },
}

impl Target {
    fn classify(path: &Path, what: &str) -> Result<Self, RunError> {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(RunError::Paths(format!(
                "{what} {} is a directory; expected a file path",
                path.display()
            ))),
            Ok(meta) if !meta.is_file() => Ok(Target::Stream(path.to_path_buf())),
            _ => Ok(Target::File {
                path: path.to_path_buf(),
                partial: with_suffix(path, ".partial"),
            }),
        }
    }

    /// The name to show in messages and reports.
    pub fn display_path(&self) -> Option<&Path> {
        match self {
            Target::Std => None,
            Target::Stream(path) | Target::File { path, .. } => Some(path),
        }
    }
}

/// Every file a run touches.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The documents.
    pub output: Target,
    /// The bad records.
    pub errors: Target,
    /// The checkpoint, when the output is a regular file.
    pub checkpoint: Option<PathBuf>,
}

impl RunFiles {
    /// Decides where `opts` writes and checks that nothing it writes is the input or another
    /// of its files. Creates nothing.
    pub fn plan(opts: &RunOptions) -> Result<Self, RunError> {
        if let Input::File(path) = &opts.input {
            let meta = fs::metadata(path).map_err(|error| RunError::Io {
                path: path.clone(),
                error,
            })?;
            if meta.is_dir() {
                return Err(RunError::Paths(format!(
                    "--input {} is a directory; expected a text or JSONL file (or - for standard input)",
                    path.display()
                )));
            }
        }
        let output = match &opts.output {
            Output::Stdout => Target::Std,
            Output::File(path) => Target::classify(path, "--output")?,
        };
        let errors = match (&opts.errors, &output) {
            (Some(path), _) => Target::classify(path, "--errors")?,
            (None, Target::File { path, .. }) => {
                Target::classify(&default_errors_path(path), "the errors file")?
            }
            (None, _) => Target::Std,
        };
        let checkpoint = match &output {
            Target::File { path, .. } => Some(checkpoint_path(path)),
            _ => None,
        };
        let files = Self {
            output,
            errors,
            checkpoint,
        };
        files.check_distinct(opts)?;
        let mut plan = opts.reads.clone();
        for (role, target) in [("--output", &files.output), ("--errors", &files.errors)] {
            if let Target::File { path, .. } = target {
                plan.write(role, path);
            }
        }
        plan.check()?;
        Ok(files)
    }

    /// Refuses any two roles that name the same regular file.
    fn check_distinct(&self, opts: &RunOptions) -> Result<(), RunError> {
        let mut roles: Vec<(String, PathBuf)> = Vec::new();
        if let Input::File(path) = &opts.input {
            roles.push((format!("--input {}", path.display()), path.clone()));
        }
        for (flag, target) in [("--output", &self.output), ("--errors", &self.errors)] {
            if let Target::File { path, partial } = target {
                roles.push((format!("{flag} {}", path.display()), path.clone()));
                roles.push((format!("{flag}'s partial file"), partial.clone()));
            }
        }
        if let Some(path) = &self.checkpoint {
            roles.push(("the checkpoint".into(), path.clone()));
        }
        let keys = roles
            .iter()
            .map(|(_, path)| FileKey::of(path))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                if a == b {
                    return Err(RunError::Paths(format!(
                        "{} and {} are the same file; refusing to run (it would overwrite {}): give distinct paths",
                        roles[i].0, roles[j].0, roles[i].0
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A file's identity: its inode when it exists, else its canonical path.
#[derive(Debug, PartialEq, Eq)]
enum FileKey {
    Inode(u64, u64),
    Path(PathBuf),
}

impl FileKey {
    fn of(path: &Path) -> Result<Self, RunError> {
        if let Ok(meta) = fs::metadata(path) {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                return Ok(FileKey::Inode(meta.dev(), meta.ino()));
            }
            #[cfg(not(unix))]
            {
                let _ = meta;
                return fs::canonicalize(path)
                    .map(FileKey::Path)
                    .map_err(|error| RunError::Io {
                        path: path.to_path_buf(),
                        error,
                    });
            }
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = fs::canonicalize(parent).map_err(|error| RunError::Io {
            path: parent.to_path_buf(),
            error,
        })?;
        Ok(FileKey::Path(
            dir.join(path.file_name().unwrap_or_default()),
        ))
    }
}

/// Opens a partial file for writing, cut back to the `len` bytes a checkpoint vouches for
/// (dropping a torn tail) and positioned at its end; `len` 0 creates or empties it.
pub fn open_partial(path: &Path, len: u64) -> Result<File, RunError> {
    let io_err = |error| RunError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = OpenOptions::new()
        .create(len == 0)
        .write(true)
        .truncate(len == 0)
        .open(path)
        .map_err(|error| {
            if error.kind() == io::ErrorKind::NotFound {
                RunError::Resume(format!(
                    "{} is missing but the checkpoint vouches for {len} bytes of it: the run's output was moved or deleted; delete the checkpoint to start over",
                    path.display()
                ))
            } else {
                io_err(error)
            }
        })?;
    let actual = file.metadata().map_err(io_err)?.len();
    if actual < len {
        return Err(RunError::Resume(format!(
            "{} is {actual} bytes but the checkpoint vouches for {len}: it was changed after the run stopped; delete the checkpoint to start over",
            path.display()
        )));
    }
    file.set_len(len).map_err(io_err)?;
    file.seek(SeekFrom::Start(len)).map_err(io_err)?;
    Ok(file)
}

/// Opens a device or pipe for appending.
pub fn open_stream(path: &Path) -> Result<File, RunError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|error| RunError::Io {
            path: path.to_path_buf(),
            error,
        })
}

/// Puts a finished partial file in place (atomic rename over any earlier file).
pub fn publish(partial: &Path, path: &Path) -> Result<(), RunError> {
    fs::rename(partial, path).map_err(|error| RunError::Io {
        path: path.to_path_buf(),
        error,
    })
}
