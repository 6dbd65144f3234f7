//! What a command reads and writes, checked before any work, and written whole.
//!
//! Every command that writes files goes through this module, so a command added later is safe
//! without thinking about it:
//! - [`Plan`]: the command lists each path it reads and each it writes; [`Plan::check`]
//!   refuses a written path that is, contains or lies inside a read path (compared by file
//!   identity, symlinks resolved) before anything is opened for writing, naming both.
//! - [`write_file`], [`replace_file`], [`write_new_file`] and [`StagedDir`]: a file is written under a temporary
//!   name beside it and renamed into place; a directory is built under a temporary sibling
//!   and swapped in with one rename, so a kill leaves the old or the new, never a mix.
//!   Temporaries are removed on failure, and those of killed runs at the next write.
//! - [`DirLock`]: a directory being written is locked; a second writer is refused with the
//!   holder's pid.
//! - [`prepare_scratch`]: a work directory carries a marker; only a directory with the marker
//!   (or an empty one) is ever emptied.
mod atomic;
mod error;
mod identity;
mod lock;
mod plan;
mod scratch;

pub use atomic::{replace_file, write_file, write_json, write_new_file, StagedDir};
pub use error::FilesError;
pub use identity::{overlap, resolved, Overlap};
pub use lock::{DirLock, LOCK_FILE};
pub use plan::Plan;
pub use scratch::{prepare_scratch, SCRATCH_MARKER};
