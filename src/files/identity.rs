//! Paths as the file system sees them: symlinks resolved, so two spellings of one file (or a
//! link to it) compare equal, and a directory's contents compare as inside it.
use std::io;
use std::path::{Component, Path, PathBuf};

/// How a written path relates to a read one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// The same file or directory.
    Same,
    /// The written path lies inside the read directory.
    Inside,
    /// The written directory contains the read path.
    Contains,
}

impl Overlap {
    /// The relation in words, as in "OUT is the same path as IN".
    pub fn describe(self) -> &'static str {
        match self {
            Overlap::Same => "is the same path as",
            Overlap::Inside => "lies inside",
            Overlap::Contains => "contains",
        }
    }
}

/// `path` made absolute with every symlink of its existing part resolved; the part that does
/// not exist yet is appended with `.` and `..` applied.
pub fn resolved(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest: Vec<Component> = Vec::new();
    loop {
        if std::fs::metadata(existing).is_ok() {
            break;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => break,
        }
    }
    let mut out = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
    for component in rest.into_iter().rev() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    Ok(out)
}

/// The same file by identity (device and inode), when both exist.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        false
    }
}

/// How `written` relates to `read`, if they overlap at all.
pub fn overlap(written: &Path, read: &Path) -> io::Result<Option<Overlap>> {
    if same_file(written, read) {
        return Ok(Some(Overlap::Same));
    }
    let (w, r) = (resolved(written)?, resolved(read)?);
    Ok(if w == r {
        Some(Overlap::Same)
    } else if w.starts_with(&r) {
        Some(Overlap::Inside)
    } else if r.starts_with(&w) {
        Some(Overlap::Contains)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_links_of_one_path_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("out/best");
        std::fs::create_dir_all(&model).unwrap();
        let dotted = dir.path().join("out/./x/../best");
        assert_eq!(overlap(&dotted, &model).unwrap(), Some(Overlap::Same));
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&model, &link).unwrap();
            assert_eq!(overlap(&link, &model).unwrap(), Some(Overlap::Same));
            assert_eq!(
                overlap(&link.join("q"), &model).unwrap(),
                Some(Overlap::Inside)
            );
        }
        assert_eq!(
            overlap(&dir.path().join("out"), &model).unwrap(),
            Some(Overlap::Contains)
        );
        assert_eq!(
            overlap(&dir.path().join("out/bestx"), &model).unwrap(),
            None
        );
    }

    #[test]
    fn a_path_that_does_not_exist_yet_resolves_through_its_existing_parent() {
        let dir = tempfile::tempdir().unwrap();
        let canon = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            resolved(&dir.path().join("a/b/../c")).unwrap(),
            canon.join("a/c")
        );
    }
}
