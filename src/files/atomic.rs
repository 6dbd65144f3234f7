//! Whole writes: a file is written under a temporary name beside it and renamed into place;
//! a directory is built under a temporary sibling and swapped in with one rename (Linux's
//! `renameat2(RENAME_EXCHANGE)`), so a reader or a kill sees the old or the new, never a mix.
//! Temporaries are removed on failure, and those left by killed runs at the next write of
//! the same path. Files are made 0644 and directories 0755.
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use super::error::FilesError;

/// Distinguishes temporaries of one process.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The file name of `path`, or an error for a path without one (`/`, `..`).
fn file_name(path: &Path) -> Result<OsString, FilesError> {
    path.file_name().map(|n| n.to_os_string()).ok_or_else(|| {
        FilesError::io("write", path)(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file",
        ))
    })
}

/// `path`'s directory (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A fresh temporary sibling of `path`: `.NAME.KIND-PID-N`.
fn temporary(path: &Path, kind: &str) -> Result<PathBuf, FilesError> {
    let name = file_name(path)?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp = OsString::from(".");
    tmp.push(&name);
    tmp.push(format!(".{kind}-{}-{n}", std::process::id()));
    Ok(parent_of(path).join(tmp))
}

/// Whether the process `pid` is alive (on systems without `/proc`, assumed alive).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Removes `.NAME.KIND-PID-N` siblings of `path` left by processes that are gone.
fn sweep(path: &Path, kind: &str) {
    let (Ok(name), dir) = (file_name(path), parent_of(path)) else {
        return;
    };
    let prefix = format!(".{}.{kind}-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = entry_name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !alive(pid)) {
            let stale = entry.path();
            tracing::info!(path = %stale.display(), "removing a temporary left by a killed run");
            let _ = remove_any(&stale);
        }
    }
}

/// Moves a `.NAME.old-PID-N` sibling of a dead process back to `path` when nothing is there.
fn restore_aside(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok() {
        return;
    }
    let (Ok(name), dir) = (file_name(path), parent_of(path)) else {
        return;
    };
    let prefix = format!(".{}.old-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let pid = entry_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !alive(pid))
            && std::fs::rename(entry.path(), path).is_ok()
        {
            tracing::info!(path = %path.display(), "restored the directory a killed run had moved aside");
            return;
        }
    }
}

/// Removes a file, link or directory tree.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets ordinary permissions: 0644 on files, 0755 on directories, recursively.
fn ordinary_permissions(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
            for entry in std::fs::read_dir(path)? {
                ordinary_permissions(&entry?.path())?;
            }
        } else if meta.is_file() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Writes `path` whole: `write` fills a temporary file beside it (given its path), which is
/// then renamed over `path` (a symlink at `path` is replaced, not written through). On any
/// error the temporary is removed and `path` is as it was. The directory is created if
/// missing.
pub fn replace_file<E: From<FilesError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(FilesError::io("write", path)(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory; expected a file path",
        ))
        .into());
    }
    let dir = parent_of(path);
    std::fs::create_dir_all(&dir).map_err(FilesError::io("create", &dir))?;
    sweep(path, "tmp");
    let tmp = temporary(path, "tmp")?;
    let finished = write(&tmp).and_then(|()| {
        ordinary_permissions(&tmp).map_err(FilesError::io("write", path))?;
        std::fs::rename(&tmp, path).map_err(FilesError::io("rename into place", path))?;
        Ok(())
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finished
}

/// Writes `bytes` to `path` whole (see [`replace_file`]), synced to disk before the rename.
pub fn write_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), FilesError> {
    replace_file(path, |tmp| {
        let mut file = std::fs::File::create(tmp).map_err(FilesError::io("write", path))?;
        file.write_all(bytes.as_ref())
            .and_then(|()| file.sync_all())
            .map_err(FilesError::io("write", path))
    })
}

/// Writes `bytes` to a new file `path` whole, refusing ([`FilesError::FileExists`]) when
/// anything is there: the file is written beside it and linked into place, which fails
/// rather than replace, so a file that appears meanwhile is kept too.
pub fn write_new_file(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), FilesError> {
    let exists = || FilesError::FileExists {
        path: path.to_path_buf(),
    };
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let dir = parent_of(path);
    std::fs::create_dir_all(&dir).map_err(FilesError::io("create", &dir))?;
    sweep(path, "tmp");
    let tmp = temporary(path, "tmp")?;
    let written = std::fs::File::create(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes.as_ref())?;
            file.sync_all()
        })
        .and_then(|()| ordinary_permissions(&tmp))
        .map_err(FilesError::io("write", path))
        .and_then(|()| {
            std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => exists(),
                _ => FilesError::io("link into place", path)(e),
            })
        });
    let _ = std::fs::remove_file(&tmp);
    written
}

/// Writes `value` to `path` as pretty JSON with a final newline, whole.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), FilesError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| {
        FilesError::io("write", path)(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    })?;
    text.push('\n');
    write_file(path, text)
}

/// A directory being built under a temporary sibling of its destination, put in place whole
/// by [`StagedDir::commit`]; dropped uncommitted, it is removed.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Starts building `target`: creates an empty temporary sibling (and `target`'s parent
    /// when missing), removing temporaries of `target` that killed runs left.
    pub fn new(target: &Path) -> Result<Self, FilesError> {
        if std::fs::symlink_metadata(target).is_ok_and(|m| !m.is_dir()) {
            return Err(FilesError::io("replace", target)(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it exists and is not a directory",
            )));
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent).map_err(FilesError::io("create", &parent))?;
        // The two-rename fallback of `exchange`, killed between its renames, leaves the
        // previous directory aside and none in place: put it back before anything else.
        restore_aside(target);
        sweep(target, "partial");
        sweep(target, "old");
        let staging = temporary(target, "partial")?;
        std::fs::create_dir(&staging).map_err(FilesError::io("create", &staging))?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            committed: false,
        })
    }

    /// Where to write the directory's contents meanwhile.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The destination.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Puts the directory in place in one step, replacing an earlier one (which is removed).
    pub fn commit(mut self) -> Result<PathBuf, FilesError> {
        ordinary_permissions(&self.staging).map_err(FilesError::io("write", &self.target))?;
        if std::fs::symlink_metadata(&self.target).is_ok() {
            exchange(&self.staging, &self.target)?;
            // The staging name now holds the earlier directory.
            remove_any(&self.staging).map_err(FilesError::io("remove", &self.staging))?;
        } else {
            std::fs::rename(&self.staging, &self.target)
                .map_err(FilesError::io("rename into place", &self.target))?;
        }
        self.committed = true;
        Ok(self.target.clone())
    }

    /// [`StagedDir::commit`] to a destination that must not exist or be an empty directory.
    pub fn commit_new(self) -> Result<PathBuf, FilesError> {
        if let Ok(mut entries) = std::fs::read_dir(&self.target) {
            if entries.next().is_some() {
                return Err(FilesError::Exists {
                    path: self.target.clone(),
                });
            }
        }
        self.commit()
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = remove_any(&self.staging);
        }
    }
}

/// Swaps `a` and `b` atomically where the system can (Linux `RENAME_EXCHANGE`); elsewhere, or
/// on a file system without it, moves `b` aside and `a` into its place (a kill between the
/// two renames leaves `b` under `a`'s temporary name, never a mix).
fn exchange(a: &Path, b: &Path) -> Result<(), FilesError> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
        if let (Some(ca), Some(cb)) = (c(a), c(b)) {
            // SAFETY: both arguments are valid NUL-terminated paths that outlive the call.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    ca.as_ptr(),
                    libc::AT_FDCWD,
                    cb.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
                return Err(FilesError::io("rename into place", b)(err));
            }
        }
    }
    let aside = temporary(b, "old")?;
    std::fs::rename(b, &aside).map_err(FilesError::io("move aside", b))?;
    std::fs::rename(a, b).map_err(FilesError::io("rename into place", b))?;
    std::fs::rename(&aside, a).map_err(FilesError::io("rename", a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_file(&path, "old").unwrap();
        let err: Result<(), FilesError> = replace_file(&path, |tmp| {
            std::fs::write(tmp, "half").unwrap();
            Err(FilesError::Exists { path: tmp.into() })
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_destination_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.path().join("out.svg");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_file(&link, "<svg/>").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "<svg/>");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[test]
    fn a_staged_directory_replaces_the_old_one_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let best = dir.path().join("best");
        std::fs::create_dir(&best).unwrap();
        std::fs::write(best.join("config.json"), "old").unwrap();
        std::fs::write(best.join("stale.txt"), "old").unwrap();
        {
            let staged = StagedDir::new(&best).unwrap();
            std::fs::write(staged.path().join("config.json"), "half").unwrap();
            // dropped without commit
        }
        assert_eq!(
            std::fs::read_to_string(best.join("config.json")).unwrap(),
            "old"
        );
        let staged = StagedDir::new(&best).unwrap();
        std::fs::write(staged.path().join("config.json"), "new").unwrap();
        staged.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(best.join("config.json")).unwrap(),
            "new"
        );
        assert!(!best.join("stale.txt").exists());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("best")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(best.join("config.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn temporaries_of_a_dead_process_are_swept_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let best = dir.path().join("best");
        // pid 4194304 is above Linux's pid_max limit: never alive.
        let stale = dir.path().join(".best.partial-4194304-0");
        std::fs::create_dir(&stale).unwrap();
        let staged = StagedDir::new(&best).unwrap();
        staged.commit().unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn a_directory_moved_aside_by_a_killed_run_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let best = dir.path().join("best");
        // What the fallback leaves when killed after its first rename (pid above pid_max).
        let aside = dir.path().join(".best.old-4194304-0");
        std::fs::create_dir(&aside).unwrap();
        std::fs::write(aside.join("config.json"), "old").unwrap();
        let staged = StagedDir::new(&best).unwrap();
        assert_eq!(
            std::fs::read_to_string(best.join("config.json")).unwrap(),
            "old"
        );
        drop(staged);
        assert!(!aside.exists());
    }

    #[test]
    fn commit_new_refuses_a_directory_with_contents() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        std::fs::create_dir(&q).unwrap();
        std::fs::write(q.join("mine"), "x").unwrap();
        let staged = StagedDir::new(&q).unwrap();
        assert!(matches!(
            staged.commit_new().unwrap_err(),
            FilesError::Exists { .. }
        ));
        assert!(q.join("mine").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
