//! The TransE embeddings themselves (`h + r ≈ t`), their distance, and their file formats:
//! safetensors (`entity` [entities, dim], `relation` [relations, dim]) and OpenKE's
//! `entity2vec.vec` / `relation2vec.vec` text (one vector per line, tab-separated), which
//! ERNIE-THU reads.
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::kernels::{self, Norm};
use super::TransEError;

/// Trained TransE vectors: row `i` of `entity` is entity `i`, row `j` of `relation` is relation `j`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransE {
    /// Embedding dimension.
    pub dim: usize,
    /// Distance used for scoring.
    pub norm: Norm,
    /// Entity vectors, row-major `[num_entities, dim]`.
    pub entity: Vec<f32>,
    /// Relation vectors, row-major `[num_relations, dim]`, or `[2 * num_relations, dim]` with
    /// `reciprocal`.
    pub relation: Vec<f32>,
    /// Reciprocal relations (Lacroix et al. 2018; LibKGE's `reciprocal_relations_model`): row
    /// `num_relations + r` is a separate vector for `r`'s inverse, and a head question
    /// `(?, r, t)` is answered as the tail question `(t, r⁻¹, ?)`.
    pub reciprocal: bool,
}

impl TransE {
    /// Number of entity rows.
    pub fn num_entities(&self) -> usize {
        self.entity.len() / self.dim.max(1)
    }

    /// Number of relations (rows of `relation`, halved with reciprocal relations).
    pub fn num_relations(&self) -> usize {
        let rows = self.relation.len() / self.dim.max(1);
        if self.reciprocal {
            rows / 2
        } else {
            rows
        }
    }

    /// Vector of entity `id` (panics if out of range, like slice indexing).
    pub fn entity(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.entity[start..start + self.dim]
    }

    /// Vector of relation `id` (panics if out of range, like slice indexing).
    pub fn relation(&self, id: u32) -> &[f32] {
        let start = id as usize * self.dim;
        &self.relation[start..start + self.dim]
    }

    /// Writes the point the answer entity should sit at: `h + r` for a tail question, `t - r`
    /// (or `t + r⁻¹` with reciprocal relations) for a head question `(?, r, t)`. The score of a
    /// candidate `e` is then `||anchor - e||`.
    pub fn anchor(&self, head_side: bool, [h, r, t]: [u32; 3], out: &mut [f32]) {
        match (head_side, self.reciprocal) {
            (false, _) => kernels::add(out, self.entity(h), self.relation(r)),
            (true, false) => kernels::sub(out, self.entity(t), self.relation(r)),
            (true, true) => {
                let inverse = r + self.num_relations() as u32;
                kernels::add(out, self.entity(t), self.relation(inverse))
            }
        }
    }

    /// `||h + r - t||`: low for plausible triples.
    pub fn distance(&self, head: u32, relation: u32, tail: u32) -> f32 {
        let mut anchor = vec![0.0; self.dim];
        kernels::add(&mut anchor, self.entity(head), self.relation(relation));
        kernels::distance(self.norm, &anchor, self.entity(tail))
    }

    /// Writes the vectors as safetensors (`entity`, `relation`; metadata `norm`, `dim`).
    pub fn save(&self, path: &Path) -> Result<(), TransEError> {
        let metadata = HashMap::from([
            ("norm".to_string(), norm_name(self.norm).to_string()),
            ("dim".to_string(), self.dim.to_string()),
            ("reciprocal".to_string(), self.reciprocal.to_string()),
        ]);
        write_matrices(
            path,
            &[
                ("entity", &self.entity, self.num_entities()),
                (
                    "relation",
                    &self.relation,
                    self.relation.len() / self.dim.max(1),
                ),
            ],
            self.dim,
            metadata,
        )
    }

    /// Reads vectors written by [`TransE::save`].
    pub fn load(path: &Path) -> Result<TransE, TransEError> {
        let bytes = std::fs::read(path).map_err(|source| TransEError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = TensorFile::parse(path, &bytes)?;
        let norm = match file.metadata.get("norm").map(String::as_str) {
            Some("l2") => Norm::L2,
            _ => Norm::L1,
        };
        let (entity, dim) = file.matrix("entity")?;
        let (relation, relation_dim) = file.matrix("relation")?;
        if relation_dim != dim {
            return Err(file.invalid(format!(
                "relation dim {relation_dim} differs from entity dim {dim}"
            )));
        }
        let reciprocal = file.metadata.get("reciprocal").is_some_and(|v| v == "true");
        if reciprocal && (relation.len() / dim.max(1)) % 2 != 0 {
            return Err(file
                .invalid("reciprocal relations need an even number of relation rows".to_string()));
        }
        Ok(TransE {
            dim,
            norm,
            entity,
            relation,
            reciprocal,
        })
    }

    /// Writes OpenKE's text format: `entity2vec.vec` and `relation2vec.vec` in `dir` (the
    /// forward relations only, one row per relation, with reciprocal relations).
    pub fn write_openke_vectors(&self, dir: &Path) -> Result<(), TransEError> {
        write_vec_text(&dir.join("entity2vec.vec"), &self.entity, self.dim)?;
        let forward = &self.relation[..self.num_relations() * self.dim];
        write_vec_text(&dir.join("relation2vec.vec"), forward, self.dim)
    }
}

/// The name a norm is stored under.
pub(crate) fn norm_name(norm: Norm) -> &'static str {
    match norm {
        Norm::L1 => "l1",
        Norm::L2 => "l2",
    }
}

/// One line per row, values separated by tabs (OpenKE / ERNIE-THU's reader splits on `\t`).
fn write_vec_text(path: &Path, values: &[f32], dim: usize) -> Result<(), TransEError> {
    let io = |source| TransEError::Io {
        path: path.to_path_buf(),
        source,
    };
    crate::files::replace_file(path, |tmp| {
        let mut out = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
        for row in values.chunks(dim.max(1)) {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.write_all(b"\t").map_err(io)?;
                }
                write!(out, "{v}").map_err(io)?;
            }
            out.write_all(b"\n").map_err(io)?;
        }
        out.flush().map_err(io)
    })
}

/// Writes f32 matrices `(name, values, rows)` with `cols` columns to a safetensors file,
/// through a temporary file renamed into place (an interrupted write never leaves a torn file).
pub(crate) fn write_matrices(
    path: &Path,
    matrices: &[(&str, &[f32], usize)],
    cols: usize,
    metadata: HashMap<String, String>,
) -> Result<(), TransEError> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = matrices
        .iter()
        .map(|(name, values, rows)| {
            (
                name.to_string(),
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                vec![*rows, cols],
            )
        })
        .collect();
    let mut metadata = metadata;
    let mut named: Vec<(&str, &[u8])> = bytes
        .iter()
        .map(|(name, data, _)| (name.as_str(), data.as_slice()))
        .collect();
    metadata.insert(CHECKSUM_KEY.to_string(), checksum(&mut named));
    let invalid = |e: safetensors::SafeTensorError| TransEError::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let views = bytes
        .iter()
        .map(|(name, data, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    crate::files::replace_file(path, |tmp| {
        safetensors::serialize_to_file(views, &Some(metadata), tmp).map_err(invalid)
    })
}

/// A parsed safetensors file with typed accessors for f32 matrices.
pub(crate) struct TensorFile<'a> {
    path: &'a Path,
    tensors: safetensors::SafeTensors<'a>,
    /// The file's string metadata.
    pub metadata: HashMap<String, String>,
}

/// Metadata key of the SHA-256 over a file's tensors (files written before it have none).
const CHECKSUM_KEY: &str = "sha256";

/// SHA-256 (hex) over `(name, bytes)` pairs in name order.
fn checksum(named: &mut [(&str, &[u8])]) -> String {
    use sha2::{Digest, Sha256};
    named.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, data) in named.iter() {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((data.len() as u64).to_le_bytes());
        hasher.update(data);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<'a> TensorFile<'a> {
    /// Parses `bytes` read from `path`.
    pub fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self, TransEError> {
        let invalid = |source: safetensors::SafeTensorError| TransEError::Corrupt {
            path: path.to_path_buf(),
            source,
        };
        let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(invalid)?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(invalid)?;
        if let Some(expected) = metadata.get(CHECKSUM_KEY) {
            let views = tensors.tensors();
            let mut named: Vec<(&str, &[u8])> = views
                .iter()
                .map(|(name, view)| (name.as_str(), view.data()))
                .collect();
            if checksum(&mut named) != *expected {
                return Err(TransEError::Format {
                    path: path.to_path_buf(),
                    reason: "its vectors do not match the checksum written with them: the file is corrupted".into(),
                });
            }
        }
        Ok(TensorFile {
            path,
            tensors,
            metadata,
        })
    }

    /// An error about this file.
    pub fn invalid(&self, reason: String) -> TransEError {
        TransEError::Format {
            path: self.path.to_path_buf(),
            reason,
        }
    }

    /// The 2-D f32 tensor `name` as row-major values and its column count.
    pub fn matrix(&self, name: &str) -> Result<(Vec<f32>, usize), TransEError> {
        let view = self
            .tensors
            .tensor(name)
            .map_err(|e| self.invalid(format!("tensor {name:?}: {e}")))?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape().len() != 2 {
            return Err(self.invalid(format!(
                "tensor {name:?} must be a 2-D f32 matrix, is {:?} {:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let cols = view.shape()[1];
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok((values, cols))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two 2-d entities and one relation.
    fn tiny() -> TransE {
        TransE {
            dim: 2,
            norm: Norm::L2,
            entity: vec![1.0, 0.0, 0.5, -0.25],
            relation: vec![0.0, 1.5],
            reciprocal: false,
        }
    }

    #[test]
    fn safetensors_round_trip_and_openke_text() {
        let model = tiny();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transe.safetensors");
        model.save(&path).unwrap();
        assert_eq!(TransE::load(&path).unwrap(), model);
        model.write_openke_vectors(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("entity2vec.vec")).unwrap();
        assert_eq!(text, "1\t0\n0.5\t-0.25\n");
        assert_eq!(model.distance(0, 0, 1), (0.25f32 + 1.75 * 1.75).sqrt());
    }

    #[test]
    fn a_bit_flipped_vectors_file_is_refused() {
        let model = tiny();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transe.safetensors");
        model.save(&path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let err = TransE::load(&path).unwrap_err().to_string();
        assert!(err.contains("corrupted"), "{err}");
    }

    #[test]
    fn reciprocal_vectors_round_trip_and_export_forward_relations_only() {
        let model = TransE {
            dim: 2,
            norm: Norm::L1,
            entity: vec![1.0, 0.0, 0.5, -0.25],
            relation: vec![0.0, 1.5, -1.0, 2.0],
            reciprocal: true,
        };
        assert_eq!(model.num_relations(), 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transe.safetensors");
        model.save(&path).unwrap();
        assert_eq!(TransE::load(&path).unwrap(), model);
        model.write_openke_vectors(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("relation2vec.vec")).unwrap();
        assert_eq!(text, "0\t1.5\n");
        let mut anchor = [0.0; 2];
        model.anchor(true, [0, 0, 1], &mut anchor);
        assert_eq!(anchor, [-0.5, 1.75], "t + r⁻¹");
    }
}
