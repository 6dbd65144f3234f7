//! The run checkpoint: the input offset and the output and error-file lengths recorded
//! together after each flushed batch, written atomically (temp file + rename), so a killed run
//! resumes with every record in the output exactly once.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bumped when the checkpoint's meaning changes.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The input file (as given).
    pub input: PathBuf,
    /// The input's length when the run started (a changed input cannot be resumed).
    pub input_len: u64,
    /// `K/N` when sharded.
    pub shard: Option<String>,
    /// Byte offset of the first input line not yet processed.
    pub input_offset: u64,
    /// Input lines consumed (for line numbers after a resume).
    pub lines: u64,
    /// Records seen, in and out of this shard (sharding counts records).
    pub records: u64,
    /// Output bytes that belong to processed records.
    pub output_len: u64,
    /// Error-file bytes that belong to processed records.
    pub errors_len: u64,
    /// Documents written.
    pub docs: u64,
    /// Records sent to the error file.
    pub errors: u64,
    /// Whether the run reached the end of its input.
    pub done: bool,
}

/// The checkpoint file of an output file: `OUTPUT.checkpoint.json` beside it.
pub fn checkpoint_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint.json");
    output.with_file_name(name)
}

/// Reads a checkpoint if the file exists.
pub fn load(path: &Path) -> std::io::Result<Option<Checkpoint>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a zhishi checkpoint: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the checkpoint atomically: a reader (or a resumed run) sees the old or the new
/// one, never a torn one.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut file = File::create(&tmp)?;
        serde_json::to_writer(&mut file, checkpoint)?;
        file.write_all(b"\n")?;
    }
    fs::rename(&tmp, path)
}
