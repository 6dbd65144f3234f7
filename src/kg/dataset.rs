//! Readers for link-prediction benchmark splits (train / valid / test) into dense id triples.
//!
//! Two layouts are supported:
//! - [`Format::OpenKe`]: `entity2id.txt`, `relation2id.txt`, `{train,valid,test}2id.txt`, each
//!   starting with a count line; triple lines are `head tail relation` ids (note the order).
//! - [`Format::Tsv`]: `{train,valid,test}.txt` with `head<TAB>relation<TAB>tail` labels. Labels get
//!   ids in sorted order over all three files, as OpenKE's `entity2id` and the PyKEEN reference
//!   script do, so runs of both tools see the same ids.
//!
//! Every triple is stored as `[head, relation, tail]`.
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Errors from reading a data set, with the file and line at fault.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file is not UTF-8 (names the line).
    #[error(transparent)]
    Text(#[from] crate::textfile::TextFileError),
    /// A line does not have the expected shape.
    #[error("{path}:{line}: expected {expected}, found {found:?}")]
    Parse {
        /// File at fault.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the line should contain.
        expected: &'static str,
        /// The offending line (trimmed).
        found: String,
    },
    /// An id is outside the range declared by `entity2id.txt` / `relation2id.txt`.
    #[error("{path}:{line}: {what} id {id} out of range (there are {count})")]
    IdOutOfRange {
        /// File at fault.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// `"entity"` or `"relation"`.
        what: &'static str,
        /// The id found.
        id: u64,
        /// Number of ids declared.
        count: usize,
    },
    /// The count on the first line disagrees with the number of records.
    #[error("{path}: first line declares {declared} records but {found} follow")]
    CountMismatch {
        /// File at fault.
        path: PathBuf,
        /// Count on line 1.
        declared: usize,
        /// Records actually present.
        found: usize,
    },
}

/// Layout of a data set directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenKE id files (`*2id.txt`).
    OpenKe,
    /// Tab-separated labels (`train.txt`, `valid.txt`, `test.txt`).
    Tsv,
}

impl Format {
    /// The file of split `split` (`train`, `valid` or `test`) in this layout.
    pub fn split_file(self, split: &str) -> String {
        match self {
            Format::OpenKe => format!("{split}2id.txt"),
            Format::Tsv => format!("{split}.txt"),
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openke" => Ok(Format::OpenKe),
            "tsv" => Ok(Format::Tsv),
            other => Err(format!("unknown format {other:?} (expected openke or tsv)")),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::OpenKe => "openke",
            Format::Tsv => "tsv",
        })
    }
}

/// Triples over dense ids `0..num_entities` and `0..num_relations`, each `[head, relation, tail]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TripleSet {
    /// Number of entity ids.
    pub num_entities: usize,
    /// Number of relation ids.
    pub num_relations: usize,
    /// The triples, `[head, relation, tail]`.
    pub triples: Vec<[u32; 3]>,
}

/// A benchmark: id maps plus the three splits (which share the id space).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Name (the directory's base name, e.g. `FB15K237`).
    pub name: String,
    /// Entity label of each id.
    pub entities: Vec<String>,
    /// Relation label of each id.
    pub relations: Vec<String>,
    /// Training triples.
    pub train: TripleSet,
    /// Validation triples.
    pub valid: TripleSet,
    /// Test triples.
    pub test: TripleSet,
}

impl Dataset {
    /// Reads the data set in `dir` laid out as `format`.
    pub fn load(dir: &Path, format: Format) -> Result<Dataset, DatasetError> {
        match format {
            Format::OpenKe => load_openke(dir),
            Format::Tsv => load_tsv(dir),
        }
    }

    /// Every known true triple (train + valid + test), for filtered evaluation.
    pub fn all_triples(&self) -> Vec<[u32; 3]> {
        let mut all = Vec::with_capacity(
            self.train.triples.len() + self.valid.triples.len() + self.test.triples.len(),
        );
        for split in [&self.train, &self.valid, &self.test] {
            all.extend_from_slice(&split.triples);
        }
        all
    }
}

fn read(path: &Path) -> Result<String, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::textfile::decode(path, bytes)?)
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Non-empty lines with their 1-based numbers.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

/// Non-empty lines of a file with their 1-based line numbers.
type Records<'a> = Vec<(usize, &'a str)>;

/// Parses the count line of an OpenKE file and returns it with the remaining records.
fn openke_records<'a>(path: &Path, text: &'a str) -> Result<(usize, Records<'a>), DatasetError> {
    let mut lines = numbered_lines(text);
    let (line, first) = lines.next().ok_or_else(|| DatasetError::Parse {
        path: path.to_path_buf(),
        line: 1,
        expected: "a record count",
        found: String::new(),
    })?;
    let declared = first
        .trim()
        .parse::<usize>()
        .map_err(|_| DatasetError::Parse {
            path: path.to_path_buf(),
            line,
            expected: "a record count",
            found: first.trim().to_string(),
        })?;
    let records: Vec<_> = lines.collect();
    if records.len() != declared {
        return Err(DatasetError::CountMismatch {
            path: path.to_path_buf(),
            declared,
            found: records.len(),
        });
    }
    Ok((declared, records))
}

/// Reads `name<TAB or space>id` lines (an OpenKE `entity2id.txt` / `relation2id.txt`, count
/// first) into a dense label table.
pub fn read_openke_ids(path: &Path, what: &'static str) -> Result<Vec<String>, DatasetError> {
    let text = read(path)?;
    let (count, records) = openke_records(path, &text)?;
    let mut names = vec![None; count];
    for (line, record) in records {
        let parse_err = || DatasetError::Parse {
            path: path.to_path_buf(),
            line,
            expected: "`label<TAB>id`",
            found: record.trim().to_string(),
        };
        let (name, id) = record
            .trim()
            .rsplit_once(['\t', ' '])
            .ok_or_else(parse_err)?;
        let id: u64 = id.trim().parse().map_err(|_| parse_err())?;
        let slot = names
            .get_mut(id as usize)
            .ok_or_else(|| DatasetError::IdOutOfRange {
                path: path.to_path_buf(),
                line,
                what,
                id,
                count,
            })?;
        *slot = Some(name.trim().to_string());
    }
    // Ids never named keep a placeholder label so the table stays dense.
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, n)| n.unwrap_or_else(|| format!("#{i}")))
        .collect())
}

/// Reads an OpenKE `*2id.txt` triple file (count first, then `head tail relation` ids) as
/// `[head, relation, tail]` triples, checking ids against the counts.
pub fn read_openke_triples(
    path: &Path,
    num_entities: usize,
    num_relations: usize,
) -> Result<TripleSet, DatasetError> {
    let text = read(path)?;
    let (count, records) = openke_records(path, &text)?;
    let mut triples = Vec::with_capacity(count);
    for (line, record) in records {
        let mut ids = [0u64; 3];
        let mut fields = record.split_whitespace();
        for slot in ids.iter_mut() {
            *slot =
                fields
                    .next()
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| DatasetError::Parse {
                        path: path.to_path_buf(),
                        line,
                        expected: "three ids `head tail relation`",
                        found: record.trim().to_string(),
                    })?;
        }
        if fields.next().is_some() {
            return Err(DatasetError::Parse {
                path: path.to_path_buf(),
                line,
                expected: "three ids `head tail relation`",
                found: record.trim().to_string(),
            });
        }
        let [h, t, r] = ids;
        for (id, what, count) in [
            (h, "entity", num_entities),
            (t, "entity", num_entities),
            (r, "relation", num_relations),
        ] {
            if id as usize >= count {
                return Err(DatasetError::IdOutOfRange {
                    path: path.to_path_buf(),
                    line,
                    what,
                    id,
                    count,
                });
            }
        }
        triples.push([h as u32, r as u32, t as u32]);
    }
    Ok(TripleSet {
        num_entities,
        num_relations,
        triples,
    })
}

fn load_openke(dir: &Path) -> Result<Dataset, DatasetError> {
    let entities = read_openke_ids(&dir.join("entity2id.txt"), "entity")?;
    let relations = read_openke_ids(&dir.join("relation2id.txt"), "relation")?;
    let split = |name: &str| {
        let file = dir.join(Format::OpenKe.split_file(name));
        read_openke_triples(&file, entities.len(), relations.len())
    };
    Ok(Dataset {
        name: dir_name(dir),
        train: split("train")?,
        valid: split("valid")?,
        test: split("test")?,
        entities,
        relations,
    })
}

/// Parses one TSV split into label triples.
fn read_tsv_labels(path: &Path) -> Result<Vec<[String; 3]>, DatasetError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (line, record) in numbered_lines(&text) {
        let fields: Vec<&str> = record.split('\t').collect();
        match fields.as_slice() {
            [h, r, t] if !h.is_empty() && !r.is_empty() && !t.is_empty() => {
                out.push([h.to_string(), r.to_string(), t.to_string()])
            }
            _ => {
                return Err(DatasetError::Parse {
                    path: path.to_path_buf(),
                    line,
                    expected: "`head<TAB>relation<TAB>tail`",
                    found: record.to_string(),
                })
            }
        }
    }
    Ok(out)
}

fn load_tsv(dir: &Path) -> Result<Dataset, DatasetError> {
    let splits = [
        read_tsv_labels(&dir.join(Format::Tsv.split_file("train")))?,
        read_tsv_labels(&dir.join(Format::Tsv.split_file("valid")))?,
        read_tsv_labels(&dir.join(Format::Tsv.split_file("test")))?,
    ];
    let mut entity_set = BTreeSet::new();
    let mut relation_set = BTreeSet::new();
    for [h, r, t] in splits.iter().flatten() {
        entity_set.insert(h.as_str());
        entity_set.insert(t.as_str());
        relation_set.insert(r.as_str());
    }
    let entities: Vec<String> = entity_set.into_iter().map(str::to_string).collect();
    let relations: Vec<String> = relation_set.into_iter().map(str::to_string).collect();
    let entity_id: HashMap<&str, u32> = entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.as_str(), i as u32))
        .collect();
    let relation_id: HashMap<&str, u32> = relations
        .iter()
        .enumerate()
        .map(|(i, r)| (r.as_str(), i as u32))
        .collect();
    let to_set = |labels: &[[String; 3]]| TripleSet {
        num_entities: entities.len(),
        num_relations: relations.len(),
        triples: labels
            .iter()
            .map(|[h, r, t]| {
                [
                    entity_id[h.as_str()],
                    relation_id[r.as_str()],
                    entity_id[t.as_str()],
                ]
            })
            .collect(),
    };
    let [train, valid, test] = &splits;
    Ok(Dataset {
        name: dir_name(dir),
        train: to_set(train),
        valid: to_set(valid),
        test: to_set(test),
        entities,
        relations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn openke_rows_are_head_tail_relation() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "entity2id.txt",
            "3\nparis\t0\nfrance\t1\nberlin\t2\n",
        );
        write(dir.path(), "relation2id.txt", "1\ncapital_of\t0\n");
        write(dir.path(), "train2id.txt", "1\n0 1 0\n");
        write(dir.path(), "valid2id.txt", "0\n");
        write(dir.path(), "test2id.txt", "1\n2 1 0\n");
        let data = Dataset::load(dir.path(), Format::OpenKe).unwrap();
        assert_eq!(data.entities, ["paris", "france", "berlin"]);
        assert_eq!(data.train.triples, [[0, 0, 1]]);
        assert_eq!(data.test.triples, [[2, 0, 1]]);
        assert_eq!((data.test.num_entities, data.test.num_relations), (3, 1));
    }

    #[test]
    fn openke_errors_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "entity2id.txt", "2\na\t0\nb\t1\n");
        write(dir.path(), "relation2id.txt", "1\nr\t0\n");
        write(dir.path(), "train2id.txt", "2\n0 1 0\n0 5 0\n");
        write(dir.path(), "valid2id.txt", "1\n0 1\n");
        write(dir.path(), "test2id.txt", "3\n0 1 0\n");
        let err = Dataset::load(dir.path(), Format::OpenKe).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::IdOutOfRange {
                    line: 3,
                    id: 5,
                    what: "entity",
                    count: 2,
                    ..
                }
            ),
            "{err}"
        );
        write(dir.path(), "train2id.txt", "1\n0 1 0\n");
        let err = Dataset::load(dir.path(), Format::OpenKe).unwrap_err();
        assert!(matches!(err, DatasetError::Parse { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("valid2id.txt:2"), "{err}");
        write(dir.path(), "valid2id.txt", "0\n");
        let err = Dataset::load(dir.path(), Format::OpenKe).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::CountMismatch {
                    declared: 3,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn tsv_ids_are_sorted_labels_over_all_splits() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "train.txt", "usa\tembassy\tuk\n");
        write(dir.path(), "valid.txt", "china\tembassy\tusa\n");
        write(dir.path(), "test.txt", "uk\taid\tchina\n");
        let data = Dataset::load(dir.path(), Format::Tsv).unwrap();
        assert_eq!(data.entities, ["china", "uk", "usa"]);
        assert_eq!(data.relations, ["aid", "embassy"]);
        assert_eq!(data.train.triples, [[2, 1, 1]]);
        assert_eq!(data.test.triples, [[1, 0, 0]]);
        write(dir.path(), "test.txt", "uk\taid\n");
        let err = Dataset::load(dir.path(), Format::Tsv).unwrap_err();
        assert!(err.to_string().contains("test.txt:1"), "{err}");
    }

    /// `rel` under the shared data root (`$ZHISHI_DATA`, else `../shared/data` beside
    /// the crate; see `tests/support/shared_data.rs`), or `None` after printing
    /// `skipped: <path> not found` to stderr when it is absent.
    fn shared_data(rel: &str) -> Option<std::path::PathBuf> {
        use std::io::Write;
        let root = match std::env::var_os("ZHISHI_DATA").filter(|d| !d.is_empty()) {
            Some(dir) => std::path::PathBuf::from(dir),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"),
        };
        let path = root.join(rel);
        if path.exists() {
            return Some(path);
        }
        let _ = writeln!(std::io::stderr(), "skipped: {} not found", path.display());
        None
    }

    #[test]
    fn reads_the_shared_nations_benchmark() {
        let Some(dir) = shared_data("kg/small/nations") else {
            return;
        };
        let data = Dataset::load(&dir, Format::Tsv).unwrap();
        assert_eq!(
            (
                data.train.triples.len(),
                data.valid.triples.len(),
                data.test.triples.len()
            ),
            (1592, 199, 201)
        );
        assert_eq!(data.entities.len(), 14);
    }
}
