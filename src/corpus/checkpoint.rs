//! The run checkpoint: where a run stands (input offset, the output and error-file lengths it
//! vouches for) and what it ran with (the pipeline's settings fingerprint, the input's
//! identity, the reader and shard settings), written atomically after each flushed batch.
//! `--resume` continues only when all of these still hold.
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::reader::ReaderOptions;
use crate::stages::annotation::OutputFormat;

/// Bumped when the checkpoint's meaning changes (2: pipeline fingerprint, input identity,
/// partial output files).
pub const CHECKPOINT_VERSION: u32 = 2;

/// Bytes at the start of the input whose hash is part of its identity.
const HEAD_BYTES: u64 = 64 * 1024;

/// Where a run stands and what it ran with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// [`crate::pipeline::Pipeline::fingerprint`] of the pipeline that wrote the output.
    pub pipeline: String,
    /// The input file when the run started (a changed input cannot be resumed).
    pub input: InputIdentity,
    /// How input lines became documents.
    pub reader: ReaderOptions,
    /// What each document became in the output (`--output-format`; absent: zhishi's JSONL).
    #[serde(default, skip_serializing_if = "OutputFormat::is_jsonl")]
    pub output_format: OutputFormat,
    /// `K/N` when sharded.
    pub shard: Option<String>,
    /// The errors file, when bad records go to a file.
    pub errors_path: Option<PathBuf>,
    /// Byte offset of the first input line not yet processed.
    pub input_offset: u64,
    /// Input lines consumed (for line numbers after a resume).
    pub lines: u64,
    /// Records seen, in and out of this shard (sharding counts records).
    pub records: u64,
    /// Bytes of the partial output that belong to processed records.
    pub output_len: u64,
    /// Bytes of the partial errors file that belong to processed records.
    pub errors_len: u64,
    /// Documents written.
    pub docs: u64,
    /// Records sent to the errors file.
    pub errors: u64,
    /// Whether the run reached the end of its input (its files are being put in place).
    pub done: bool,
}

/// What identifies an input file: a resumed run must read the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The path as given.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Its modification time, nanoseconds since the Unix epoch (when the OS reports one).
    pub modified_ns: Option<u64>,
    /// SHA-256 (hex) of its first 64 KiB.
    pub head_sha256: String,
}

impl InputIdentity {
    /// Reads the identity of the regular file `path`.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| u64::try_from(d.as_nanos()).ok());
        let mut head = Vec::new();
        (&mut file).take(HEAD_BYTES).read_to_end(&mut head)?;
        Ok(Self {
            path: path.to_path_buf(),
            len: meta.len(),
            modified_ns,
            head_sha256: hex(&Sha256::digest(&head)),
        })
    }

    /// How `self` (now) differs from `then`, for the resume error; `None` if it does not.
    pub fn difference(&self, then: &InputIdentity) -> Option<String> {
        if self.len != then.len {
            Some(format!("its size was {} bytes, now {}", then.len, self.len))
        } else if self.head_sha256 != then.head_sha256 {
            Some("its first 64 KiB changed".into())
        } else if self.modified_ns != then.modified_ns {
            Some("its modification time changed".into())
        } else {
            None
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checkpoint file of an output file: `OUTPUT.checkpoint.json` beside it.
pub fn checkpoint_path(output: &Path) -> PathBuf {
    with_suffix(output, ".checkpoint.json")
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// What a checkpoint file holds.
// Read once per run and matched at once: boxing the checkpoint would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Saved {
    /// No checkpoint file.
    None,
    /// A checkpoint of this version.
    Current(Checkpoint),
    /// A checkpoint written by an older zhishi (its `version`), which cannot be verified.
    Old(u32),
}

/// Reads a checkpoint if the file exists.
pub fn load(path: &Path) -> std::io::Result<Saved> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::None),
        Err(e) => return Err(e),
    };
    let invalid = |e: serde_json::Error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a zhishi checkpoint: {e}"),
        )
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let version: Version = serde_json::from_slice(&bytes).map_err(invalid)?;
    if version.version != CHECKPOINT_VERSION {
        return Ok(Saved::Old(version.version));
    }
    serde_json::from_slice(&bytes)
        .map(Saved::Current)
        .map_err(invalid)
}

/// Replaces the checkpoint atomically: a reader (or a resumed run) sees the old or the new
/// one, never a torn one.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(checkpoint)?;
    text.push(b'\n');
    crate::files::write_file(path, text).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_sees_size_content_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        fs::write(&path, "北京欢迎你\n").unwrap();
        let then = InputIdentity::of(&path).unwrap();
        assert_eq!(InputIdentity::of(&path).unwrap().difference(&then), None);
        fs::write(&path, "上海欢迎你\n").unwrap();
        let now = InputIdentity::of(&path).unwrap();
        assert_eq!(
            now.difference(&then).as_deref(),
            Some("its first 64 KiB changed")
        );
        fs::write(&path, "北京欢迎你啊\n").unwrap();
        let now = InputIdentity::of(&path).unwrap();
        assert!(now.difference(&then).unwrap().starts_with("its size was"));
    }

    #[test]
    fn old_checkpoints_are_recognised_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.jsonl.checkpoint.json");
        fs::write(&path, r#"{"version":1,"input":"x","input_len":3}"#).unwrap();
        assert!(matches!(load(&path).unwrap(), Saved::Old(1)));
        fs::write(&path, "not json").unwrap();
        assert!(load(&path).is_err());
        assert!(matches!(
            load(&dir.path().join("none")).unwrap(),
            Saved::None
        ));
    }
}
