//! Why a command's files could not be planned or written.
use std::path::PathBuf;

use super::identity::Overlap;

/// Why a command's files could not be planned or written. Messages describe this layer; the
/// operating system's cause is reached through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A path the command writes is, contains or lies inside a path it reads.
    #[error(
        "{written_role} {} {} {read_role} {}: refusing to start, the command would overwrite what it reads; choose another output",
        written.display(),
        how.describe(),
        read.display()
    )]
    Overlap {
        /// What the written path is (e.g. `train.output_dir`).
        written_role: String,
        /// The written path.
        written: PathBuf,
        /// What the read path is (e.g. `encoder.model`).
        read_role: String,
        /// The read path.
        read: PathBuf,
        /// How they overlap.
        how: Overlap,
    },
    /// Two outputs of one command are the same path.
    #[error(
        "{first_role} and {second_role} are the same file ({}): give distinct paths",
        path.display()
    )]
    SameOutput {
        /// The first output's role.
        first_role: String,
        /// The second output's role.
        second_role: String,
        /// The path both name.
        path: PathBuf,
    },
    /// Another process is writing the directory.
    #[error(
        "{} is being written by another zhishi process ({holder}; lock file {}): wait for it to finish or choose another output directory",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// Who holds it (`pid N`, or `pid unknown`).
        holder: String,
    },
    /// A directory to empty was not made by zhishi.
    #[error(
        "{} exists, is not empty and was not created by zhishi (no {} marker in it): refusing to delete its contents; give a new or empty directory",
        dir.display(),
        super::scratch::SCRATCH_MARKER
    )]
    NotScratch {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory that must be new already exists with contents.
    #[error("{} exists and is not empty: give a new or empty directory", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// A file that must be new already exists.
    #[error("{} already exists: refusing to replace it", path.display())]
    FileExists {
        /// The path.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`write`, `create`, `rename into place`, ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl FilesError {
    /// An [`FilesError::Io`] maker for `map_err`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| FilesError::Io {
            action,
            path,
            source,
        }
    }
}
