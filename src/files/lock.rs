//! A lock on a directory being written, so that a second writer is refused with the holder's
//! pid instead of interleaving its files with the first's. The lock is an advisory `flock` on
//! `DIR/.zhishi-lock`, released when the holder exits, however it exits.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use super::error::FilesError;

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = ".zhishi-lock";

/// Holds a directory's write lock until dropped.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    dir: PathBuf,
    /// The lock file, removed on drop when it is a sibling (a lock inside the directory
    /// stays, so the directory never looks different after a run).
    remove: Option<PathBuf>,
}

impl DirLock {
    /// Creates `dir` if missing and locks it for writing; refused with the holder's pid when
    /// another process (or another lock in this one) holds it.
    pub fn acquire(dir: &Path) -> Result<Self, FilesError> {
        Self::lock_file(dir, &dir.join(LOCK_FILE), dir)
    }

    /// Locks `path` (in the directory `parent`, created if missing) for the output `dir`.
    fn lock_file(parent: &Path, path: &Path, dir: &Path) -> Result<Self, FilesError> {
        std::fs::create_dir_all(parent).map_err(FilesError::io("create", parent))?;
        // A holder that removes its lock file on drop may do so between our open and our
        // lock: then the file we locked is no longer the one at `path`, so try again.
        for _ in 0..100 {
            let lock = Self::try_lock_file(path, dir)?;
            if same_inode(&lock.file, path) {
                return Ok(lock);
            }
        }
        Err(FilesError::Locked {
            dir: dir.to_path_buf(),
            lock: path.to_path_buf(),
            holder: "pid unknown (the lock file keeps being replaced)".into(),
        })
    }

    /// Opens and locks `path` once.
    fn try_lock_file(path: &Path, dir: &Path) -> Result<Self, FilesError> {
        let path = path.to_path_buf();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(FilesError::io("open the lock file", &path))?;
        if file.try_lock_exclusive().is_err() {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = match text.trim().parse::<u32>() {
                Ok(pid) => format!("pid {pid}"),
                Err(_) => "pid unknown".into(),
            };
            return Err(FilesError::Locked {
                dir: dir.to_path_buf(),
                lock: path,
                holder,
            });
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(FilesError::io("write the lock file", &path))?;
        Ok(Self {
            file,
            dir: dir.to_path_buf(),
            remove: None,
        })
    }

    /// Locks the path `target` that is written whole (built beside it and swapped in, see
    /// [`super::StagedDir`]): the lock is the hidden file `.NAME.zhishi-lock` beside it (a lock
    /// file inside would be swapped away with the old directory), removed when released.
    pub fn acquire_sibling(target: &Path) -> Result<Self, FilesError> {
        let name = target.file_name().ok_or_else(|| {
            FilesError::io("lock", target)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        })?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut lock_name = std::ffi::OsString::from(".");
        lock_name.push(name);
        lock_name.push(".zhishi-lock");
        let path = parent.join(lock_name);
        let mut lock = Self::lock_file(&parent, &path, target)?;
        lock.remove = Some(path);
        Ok(lock)
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if let Some(path) = &self.remove {
            let _ = std::fs::remove_file(path);
        }
        let _ = FileExt::unlock(&self.file);
    }
}

/// Whether the open `file` is the file now at `path`.
fn same_inode(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_refused_with_the_holders_pid_until_the_first_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let first = DirLock::acquire(&out).unwrap();
        let err = DirLock::acquire(&out).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DirLock::acquire(&out).unwrap();
        let q = dir.path().join("q");
        let held = DirLock::acquire_sibling(&q).unwrap();
        assert!(DirLock::acquire_sibling(&q).is_err());
        assert!(!q.exists());
        drop(held);
        assert!(
            !dir.path().join(".q.zhishi-lock").exists(),
            "a sibling lock is removed"
        );
    }
}
