//! A training run's output directory: what the run writes there (`best/`, `last/`, `final/`,
//! `curves.svg`) checked against what it reads before any work, and the directory locked for
//! the run, so that a run can neither overwrite its own encoder or data nor interleave its
//! files with a second run's.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::files::{DirLock, FilesError, Plan};

/// The model with the best dev score.
pub const BEST_DIR: &str = "best";
/// The resumable training state.
pub const LAST_DIR: &str = "last";
/// The model as it was when the run ended (`train.save_final`).
pub const FINAL_DIR: &str = "final";
/// The loss and dev-score curves.
pub const CURVES_FILE: &str = "curves.svg";

/// A claimed, locked output directory; the lock is held while any clone lives.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    dir: PathBuf,
    _lock: Arc<DirLock>,
}

impl TrainOutput {
    /// Claims `dir` for a run that reads what `reads` declares: refuses when anything the run
    /// writes there is, contains or lies inside a read path, then locks `dir` (created if
    /// missing; a second run into it is refused with this one's pid).
    pub fn claim(dir: &Path, reads: &Plan) -> Result<Self, FilesError> {
        let mut plan = reads.clone();
        for (role, name) in [
            ("the best model", BEST_DIR),
            ("the training checkpoint", LAST_DIR),
            ("the final model", FINAL_DIR),
            ("the training curves", CURVES_FILE),
        ] {
            plan.write(format!("{role} (train.output_dir)"), dir.join(name));
        }
        plan.check()?;
        let lock = DirLock::acquire(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            _lock: Arc::new(lock),
        })
    }

    /// The output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/best`.
    pub fn best(&self) -> PathBuf {
        self.dir.join(BEST_DIR)
    }

    /// `DIR/last`.
    pub fn last(&self) -> PathBuf {
        self.dir.join(LAST_DIR)
    }

    /// `DIR/final`.
    pub fn final_dir(&self) -> PathBuf {
        self.dir.join(FINAL_DIR)
    }

    /// `DIR/curves.svg`.
    pub fn curves(&self) -> PathBuf {
        self.dir.join(CURVES_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d1_an_encoder_inside_the_output_directory_is_refused_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(out.join("best")).unwrap();
        std::fs::write(out.join("best/config.json"), "{}").unwrap();
        let mut reads = Plan::new();
        reads.read("encoder.model", out.join("best"));
        let err = TrainOutput::claim(&out, &reads).unwrap_err().to_string();
        assert!(err.contains("encoder.model"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join("best/config.json")).unwrap(),
            "{}"
        );
        // Data files beside the outputs are fine.
        let mut reads = Plan::new();
        reads.read("data.train", out.join("train.bio"));
        TrainOutput::claim(&out, &reads).unwrap();
    }

    #[test]
    fn d5_a_second_run_into_one_output_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = TrainOutput::claim(dir.path(), &Plan::new()).unwrap();
        let err = TrainOutput::claim(dir.path(), &Plan::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("being written by another zhishi process"),
            "{err}"
        );
        drop(first);
        TrainOutput::claim(dir.path(), &Plan::new()).unwrap();
    }
}
