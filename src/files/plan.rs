//! A command's declaration of what it reads and writes, checked before any work.
use std::path::{Path, PathBuf};

use super::error::FilesError;
use super::identity::{overlap, resolved};

/// One path of a [`Plan`] and what it is to the command (a flag or config key).
#[derive(Debug, Clone)]
struct Entry {
    role: String,
    path: PathBuf,
}

/// What a command reads and writes. Build it from the command's flags and configuration,
/// then [`Plan::check`] it before opening anything for writing.
///
/// ```
/// use zhishi::files::Plan;
///
/// let dir = tempfile::tempdir().unwrap();
/// let model = dir.path().join("out/best");
/// std::fs::create_dir_all(&model).unwrap();
/// let mut plan = Plan::new();
/// plan.read("encoder.model", &model)
///     .write("the best model", dir.path().join("out/best"));
/// let err = plan.check().unwrap_err().to_string();
/// assert!(err.contains("the best model") && err.contains("encoder.model"), "{err}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Plan {
    reads: Vec<Entry>,
    writes: Vec<Entry>,
}

impl Plan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that the command reads `path` (a file or directory) as `role`.
    pub fn read(&mut self, role: impl Into<String>, path: impl AsRef<Path>) -> &mut Self {
        self.reads.push(Entry {
            role: role.into(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// Declares that the command writes (creates or replaces) `path` as `role`.
    pub fn write(&mut self, role: impl Into<String>, path: impl AsRef<Path>) -> &mut Self {
        self.writes.push(Entry {
            role: role.into(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// Adds every read and write of `other`.
    pub fn extend(&mut self, other: &Plan) -> &mut Self {
        self.reads.extend(other.reads.iter().cloned());
        self.writes.extend(other.writes.iter().cloned());
        self
    }

    /// Refuses a written path that is, contains or lies inside a read path, and two writes of
    /// one path. Creates nothing.
    pub fn check(&self) -> Result<(), FilesError> {
        for w in &self.writes {
            for r in &self.reads {
                let how = overlap(&w.path, &r.path).map_err(FilesError::io("resolve", &w.path))?;
                if let Some(how) = how {
                    return Err(FilesError::Overlap {
                        written_role: w.role.clone(),
                        written: w.path.clone(),
                        read_role: r.role.clone(),
                        read: r.path.clone(),
                        how,
                    });
                }
            }
        }
        let keys = self
            .writes
            .iter()
            .map(|w| resolved(&w.path).map_err(FilesError::io("resolve", &w.path)))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate().skip(i + 1) {
                if a == b {
                    return Err(FilesError::SameOutput {
                        first_role: self.writes[i].role.clone(),
                        second_role: self.writes[j].role.clone(),
                        path: self.writes[i].path.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_beside_its_inputs_is_fine_and_over_them_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("r.json");
        std::fs::write(&input, "{}").unwrap();
        let mut ok = Plan::new();
        ok.read("input", &input)
            .write("--output", dir.path().join("r.svg"));
        ok.check().unwrap();
        let mut same = Plan::new();
        same.read("input", &input).write("--output", &input);
        let err = same.check().unwrap_err().to_string();
        assert!(err.contains("is the same path as"), "{err}");
        let mut twice = Plan::new();
        twice
            .write("--output", dir.path().join("o"))
            .write("--errors", dir.path().join("./o"));
        assert!(matches!(
            twice.check().unwrap_err(),
            FilesError::SameOutput { .. }
        ));
    }

    #[test]
    fn an_output_inside_an_input_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m");
        std::fs::create_dir(&model).unwrap();
        let mut plan = Plan::new();
        plan.read("--model", &model)
            .write("--output", model.join("q"));
        let err = plan.check().unwrap_err().to_string();
        assert!(err.contains("lies inside"), "{err}");
    }
}
