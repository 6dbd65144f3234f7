//! [`StoreError`], the one error type of the store, and the helper that wraps I/O errors
//! with the path they happened on.
use std::path::{Path, PathBuf};

use super::{LOCK_FILE, MANIFEST};

/// Errors from opening, reading or writing a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory exists but holds no store manifest.
    #[error("{path} is not a zhishi KG store (no {MANIFEST}); create one with `zhishi kg import --db {path} FILE`", path = .0.display())]
    NotAStore(PathBuf),
    /// The directory does not exist.
    #[error("KG store {path} does not exist", path = .0.display())]
    Missing(PathBuf),
    /// The manifest names another format version.
    #[error("KG store {path} has format version {found}, this build reads version {expected}; re-import it", path = .path.display())]
    IncompatibleVersion {
        /// The store directory.
        path: PathBuf,
        /// Version found in the manifest.
        found: u32,
        /// Version this build supports.
        expected: u32,
    },
    /// Another process (or another handle in this process) holds the store.
    #[error("KG store {path} is in use by another process (lock {lock}); close it and retry", path = .path.display(), lock = .path.join(LOCK_FILE).display())]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store's files are damaged or inconsistent.
    #[error("KG store {path} is corrupt: {detail}", path = .path.display())]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An underlying I/O error.
    #[error("I/O error on {path}", path = .path.display())]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An error reported by sled.
    #[error("database error in {path}", path = .path.display())]
    Db {
        /// The store directory.
        path: PathBuf,
        /// The error.
        source: sled::Error,
    },
    /// A term or predicate name that cannot be stored.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}
