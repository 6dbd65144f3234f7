//! Batch processing of corpora: streaming record reading ([`reader`]), the crash-safe run
//! loop ([`run`]), the files it writes ([`files`]) and its checkpoint ([`checkpoint`]).
pub mod checkpoint;
pub mod files;
pub mod reader;
pub mod run;

pub use reader::{InputFormat, ReaderOptions, RecordError};
pub use run::{run, Input, Output, Progress, RunError, RunOptions, RunReport, Shard};
