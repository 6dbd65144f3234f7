//! The store directory on disk: the `STORE.json` manifest (the commit point), the `LOCK`
//! file, generation directories and the copies made of them.
use std::fs;
use std::path::{Path, PathBuf};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

use super::error::io_err;
use super::{StoreError, FORMAT_NAME, FORMAT_VERSION, LOCK_FILE, MANIFEST};

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    format: String,
    version: u32,
    pub(super) generation: u64,
}

pub(super) fn generation_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("gen-{generation}"))
}

pub(super) fn read_manifest(dir: &Path) -> Result<Manifest, StoreError> {
    if !dir.exists() {
        return Err(StoreError::Missing(dir.to_path_buf()));
    }
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::NotAStore(dir.to_path_buf()))
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path: dir.to_path_buf(),
        detail: format!("{MANIFEST} is not valid: {e}"),
    })?;
    if manifest.format != FORMAT_NAME {
        return Err(StoreError::NotAStore(dir.to_path_buf()));
    }
    if manifest.version != FORMAT_VERSION {
        return Err(StoreError::IncompatibleVersion {
            path: dir.to_path_buf(),
            found: manifest.version,
            expected: FORMAT_VERSION,
        });
    }
    Ok(manifest)
}

pub(super) fn write_manifest(dir: &Path, generation: u64) -> Result<(), StoreError> {
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        generation,
    };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| StoreError::Corrupt {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    })?;
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    {
        let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
    }
    let path = dir.join(MANIFEST);
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    // Make the rename durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub(super) fn lock_dir(dir: &Path) -> Result<fs::File, StoreError> {
    let file = open_lock_file(dir)?;
    retry_lock(dir, || file.try_lock_exclusive())?;
    Ok(file)
}

/// Takes the store's lock shared: many readers copying at once, no writer meanwhile.
///
/// A shared lock needs no write access, so an existing `LOCK` is opened read-only: a store
/// the user cannot write (`chmod -R a-w`, a read-only mount) can still be copied. `None`
/// when there is no `LOCK` and none can be created in a read-only directory; then no process
/// holds the lock, and [`lock_still_absent`] tells the caller whether one took it meanwhile.
pub(super) fn lock_dir_shared(dir: &Path) -> Result<Option<fs::File>, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match open_lock_file(dir) {
            Ok(file) => file,
            Err(StoreError::Io { source, .. }) if is_read_only(&source) => return Ok(None),
            Err(e) => return Err(e),
        },
        Err(e) => return Err(io_err(&path)(e)),
    };
    retry_lock(dir, || fs2::FileExt::try_lock_shared(&file))?;
    Ok(Some(file))
}

/// Whether `dir` still has no `LOCK` file: nobody has opened the store for writing since
/// [`lock_dir_shared`] found none (a writer creates the file before it touches anything).
pub(super) fn lock_still_absent(dir: &Path) -> bool {
    !dir.join(LOCK_FILE).exists()
}

/// Whether `e` says the file system refuses to create a file (permissions, read-only mount).
fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

/// How long a held lock is waited for before the store counts as in use. A lock just released
/// can still be held for a moment by a child process that another thread of the same program
/// forked before it exec'd (the lock goes with the inherited descriptor until exec closes it).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Tries `lock` until it succeeds or [`LOCK_WAIT`] has passed.
fn retry_lock(dir: &Path, lock: impl Fn() -> std::io::Result<()>) -> Result<(), StoreError> {
    let start = std::time::Instant::now();
    loop {
        if lock().is_ok() {
            return Ok(());
        }
        if start.elapsed() >= LOCK_WAIT {
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn open_lock_file(dir: &Path) -> Result<fs::File, StoreError> {
    let path = dir.join(LOCK_FILE);
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))
}

/// Removes generation directories other than `keep` (left behind by interrupted writes).
pub(super) fn remove_stale_generations(dir: &Path, keep: Option<u64>) -> Result<(), StoreError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix("gen-") else {
            continue;
        };
        let stale = name.ends_with(".tmp")
            || rest
                .parse::<u64>()
                .is_ok_and(|generation| Some(generation) != keep);
        if stale {
            let path = entry.path();
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Copies the files of `from` (recursively) into `to`, created if needed. The copy is ours to
/// write (sled opens its files for writing) even when the original is read-only: copied files
/// get their owner's write permission.
pub(super) fn copy_dir(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(to).map_err(io_err(to))?;
    for entry in fs::read_dir(from).map_err(io_err(from))? {
        let entry = entry.map_err(io_err(from))?;
        let target = to.join(entry.file_name());
        let file_type = entry.file_type().map_err(io_err(&entry.path()))?;
        if file_type.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).map_err(io_err(&target))?;
            make_writable(&target)?;
        }
    }
    Ok(())
}

/// Gives `path` its owner's write permission (`fs::copy` copies a read-only file's mode).
fn make_writable(path: &Path) -> Result<(), StoreError> {
    let mut permissions = fs::metadata(path).map_err(io_err(path))?.permissions();
    if permissions.readonly() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            permissions.set_mode(permissions.mode() | 0o200);
        }
        #[cfg(not(unix))]
        permissions.set_readonly(false);
        fs::set_permissions(path, permissions).map_err(io_err(path))?;
    }
    Ok(())
}
