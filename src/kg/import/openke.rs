//! OpenKE id files: `train2id.txt` lines of `head tail relation` ids, resolved to names
//! through the `entity2id.txt` and `relation2id.txt` maps beside them.
use std::collections::HashMap;
use std::path::Path;

use super::ImportError;
use crate::kg::store::{NamedTriple, TermKind};

/// OpenKE id maps read from the files beside `train2id.txt`.
pub(super) struct OpenKeMaps {
    entities: HashMap<u32, String>,
    relations: HashMap<u32, String>,
}

impl OpenKeMaps {
    pub(super) fn load(triples_path: &Path) -> Result<OpenKeMaps, ImportError> {
        let dir = triples_path.parent().unwrap_or(Path::new("."));
        Ok(OpenKeMaps {
            entities: read_id_map(&dir.join("entity2id.txt"))?,
            relations: read_id_map(&dir.join("relation2id.txt"))?,
        })
    }

    pub(super) fn parse(&self, line: &str, number: u64) -> Result<Option<NamedTriple>, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() || (number == 1 && fields.len() == 1) {
            return Ok(None); // blank line or the leading count
        }
        if fields.len() != 3 {
            return Err(format!(
                "expected 3 ids `head tail relation`, found {} fields",
                fields.len()
            ));
        }
        let id = |s: &str, what: &str| {
            s.parse::<u32>()
                .map_err(|_| format!("{what} id {s:?} is not a non-negative integer"))
        };
        let (h, t, r) = (
            id(fields[0], "head")?,
            id(fields[1], "tail")?,
            id(fields[2], "relation")?,
        );
        let entity = |i: u32| {
            self.entities
                .get(&i)
                .cloned()
                .ok_or_else(|| format!("entity id {i} is not in entity2id.txt"))
        };
        let relation = self
            .relations
            .get(&r)
            .cloned()
            .ok_or_else(|| format!("relation id {r} is not in relation2id.txt"))?;
        Ok(Some(NamedTriple {
            subject: entity(h)?,
            predicate: relation,
            object: entity(t)?,
            object_kind: TermKind::Entity,
        }))
    }
}

/// Reads an OpenKE `name<TAB>id` file whose first line is the count.
fn read_id_map(path: &Path) -> Result<HashMap<u32, String>, ImportError> {
    let format_err = |line: usize, reason: String| ImportError::Format {
        path: path.to_path_buf(),
        reason: format!("line {line}: {reason}"),
    };
    let text = crate::textfile::read(path).map_err(|e| match e {
        crate::textfile::TextFileError::Io { path, source } => ImportError::Io { path, source },
        crate::textfile::TextFileError::Utf8 { line, column, .. } => format_err(
            line,
            format!("invalid UTF-8 at byte {column} of the line; expected UTF-8 text"),
        ),
        crate::textfile::TextFileError::LineTooLong { line, limit, .. } => {
            format_err(line, format!("the line is longer than {limit} bytes"))
        }
    })?;
    let mut lines = text.lines().enumerate();
    let count: usize = match lines.next() {
        Some((_, first)) => first
            .trim()
            .parse()
            .map_err(|_| format_err(1, format!("expected the entry count, found {first:?}")))?,
        None => return Err(format_err(1, "empty file; expected the entry count".into())),
    };
    // The header is only a claim: never reserve more than the file has lines for (a header of
    // 99999999999999 once asked for petabytes).
    let mut map = HashMap::with_capacity(count.min(text.lines().count()));
    for (index, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, id)) = line.rsplit_once(['\t', ' ']) else {
            return Err(format_err(index + 1, "expected `name<TAB>id`".into()));
        };
        let id: u32 = id
            .trim()
            .parse()
            .map_err(|_| format_err(index + 1, format!("id {id:?} is not an integer")))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format_err(index + 1, "empty name".into()));
        }
        map.insert(id, name.to_string());
    }
    if map.len() != count {
        return Err(format_err(
            1,
            format!("header says {count} entries, file has {}", map.len()),
        ));
    }
    Ok(map)
}
