//! Work directories a command empties and refills (`zhishi bench kg --work DIR`): only a
//! directory that is new, empty, or carries zhishi's marker is ever emptied, so a mistyped
//! `--work .` or `--work ~` deletes nothing.
use std::path::Path;

use super::error::FilesError;

/// The marker file a scratch directory carries.
pub const SCRATCH_MARKER: &str = ".zhishi-scratch";

/// Makes `dir` an empty scratch directory carrying the marker: created when missing; emptied
/// when it carries the marker; refused when it has contents but no marker.
pub fn prepare_scratch(dir: &Path) -> Result<(), FilesError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            // The lock of the command that is about to use the directory is not contents.
            let names: Vec<_> = entries
                .collect::<Result<Vec<_>, _>>()
                .map_err(FilesError::io("list", dir))?
                .into_iter()
                .filter(|e| e.file_name() != super::lock::LOCK_FILE)
                .collect();
            let marked = names.iter().any(|e| e.file_name() == SCRATCH_MARKER);
            if !names.is_empty() && !marked {
                return Err(FilesError::NotScratch {
                    dir: dir.to_path_buf(),
                });
            }
            for entry in names {
                let path = entry.path();
                let kind = entry.file_type().map_err(FilesError::io("list", &path))?;
                if kind.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                }
                .map_err(FilesError::io("remove", &path))?;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(FilesError::io("create", dir))?;
        }
        Err(e) => return Err(FilesError::io("list", dir)(e)),
    }
    let marker = dir.join(SCRATCH_MARKER);
    std::fs::write(
        &marker,
        "created by zhishi; the directory may be emptied by zhishi\n",
    )
    .map_err(FilesError::io("write", &marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_the_marker_is_never_emptied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("thesis.tex"), "years of work").unwrap();
        let err = prepare_scratch(dir.path()).unwrap_err().to_string();
        assert!(err.contains("refusing to delete"), "{err}");
        assert!(dir.path().join("thesis.tex").exists());
    }

    #[test]
    fn a_marked_directory_is_emptied_and_a_new_one_marked() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        prepare_scratch(&work).unwrap();
        std::fs::create_dir(work.join("store")).unwrap();
        std::fs::write(work.join("store/x"), "1").unwrap();
        prepare_scratch(&work).unwrap();
        let names: Vec<_> = std::fs::read_dir(&work)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(SCRATCH_MARKER)]);
    }
}
