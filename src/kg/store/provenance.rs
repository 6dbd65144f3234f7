//! Where a triple came from: provenance records in the `provenance` tree, written by
//! `zhishi kg import --from-run` for relations a pipeline extracted.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `provenance` | subject, predicate, object (ids), 16-byte hash of the record's identity | codec version (1 byte), then the record as JSON |
//!
//! A record's identity is its document, stage, model and argument spans (not its score or
//! time), so importing the same run again adds nothing. The value starts with
//! [`PROVENANCE_CODEC`]: a record of another codec version is reported as such rather than
//! misread. Stores written before this tree existed open unchanged (the tree is empty), so
//! the store's [`super::FORMAT_VERSION`] stays 3.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::codec::be;
use super::trees::Trees;
use super::{Store, StoreError, StoreWriter, Triple};

/// The codec version byte that starts every provenance value.
pub const PROVENANCE_CODEC: u8 = 1;

/// Where one triple was found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The document's id (the run's `id`, or `line N` of the run output without one).
    pub document: String,
    /// The relation's score.
    pub score: f32,
    /// The stage instance that produced the relation (its `source`).
    pub stage: String,
    /// The model behind the stage, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// When the relation was imported (seconds since the Unix epoch, UTC).
    pub time: u64,
    /// The head argument's character span in the document.
    pub head_span: [usize; 2],
    /// The tail argument's character span in the document.
    pub tail_span: [usize; 2],
}

impl Provenance {
    /// The part of the key that tells records of one triple apart.
    fn identity_hash(&self) -> [u8; 16] {
        let identity = serde_json::json!([
            self.document,
            self.stage,
            self.model,
            self.head_span,
            self.tail_span
        ]);
        let digest = Sha256::digest(identity.to_string().as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }
}

fn triple_key(t: &Triple) -> Vec<u8> {
    let mut key = Vec::with_capacity(28);
    key.extend_from_slice(&be(t.subject));
    key.extend_from_slice(&be(t.predicate));
    key.extend_from_slice(&be(t.object));
    key
}

fn encode(record: &Provenance) -> Vec<u8> {
    let mut out = vec![PROVENANCE_CODEC];
    // A struct of strings and numbers always serialises.
    out.extend(serde_json::to_vec(record).unwrap_or_default());
    out
}

fn decode(trees: &Trees, bytes: &[u8]) -> Result<Provenance, StoreError> {
    match bytes.split_first() {
        Some((&PROVENANCE_CODEC, json)) => serde_json::from_slice(json)
            .map_err(|e| trees.corrupt(format!("bad provenance record: {e}"))),
        Some((version, _)) => Err(trees.corrupt(format!(
            "provenance record of codec version {version}; this build reads version {PROVENANCE_CODEC}"
        ))),
        None => Err(trees.corrupt("empty provenance record")),
    }
}

fn records(trees: &Trees, triple: &Triple) -> Result<Vec<Provenance>, StoreError> {
    let mut out = Vec::new();
    for item in trees.provenance.scan_prefix(triple_key(triple)) {
        let (_, value) = item.map_err(trees.db_err())?;
        out.push(decode(trees, &value)?);
    }
    Ok(out)
}

fn contains(trees: &Trees, triple: &Triple, record: &Provenance) -> Result<bool, StoreError> {
    let mut key = triple_key(triple);
    key.extend_from_slice(&record.identity_hash());
    trees.provenance.contains_key(key).map_err(trees.db_err())
}

impl Store {
    /// The provenance records of `triple`, in key order (empty for triples imported from
    /// files).
    pub fn provenance(&self, triple: &Triple) -> Result<Vec<Provenance>, StoreError> {
        records(&self.trees, triple)
    }

    /// Whether the store holds `record` for `triple` already.
    pub fn has_provenance(&self, triple: &Triple, record: &Provenance) -> Result<bool, StoreError> {
        contains(&self.trees, triple, record)
    }
}

impl StoreWriter {
    /// Records where `triple` (applied in this session or before) came from; returns whether
    /// the record is new (one with the same document, stage, model and spans is kept as it
    /// was).
    pub fn add_provenance(
        &mut self,
        triple: &Triple,
        record: &Provenance,
    ) -> Result<bool, StoreError> {
        let trees = self.trees();
        if contains(trees, triple, record)? {
            return Ok(false);
        }
        let mut key = triple_key(triple);
        key.extend_from_slice(&record.identity_hash());
        trees
            .provenance
            .insert(key, encode(record))
            .map_err(trees.db_err())?;
        Ok(true)
    }

    /// Whether the store held `triple` when this session began or since its last flush.
    pub fn holds(&self, triple: &Triple) -> Result<bool, StoreError> {
        let pattern = super::Pattern {
            subject: Some(triple.subject),
            predicate: Some(triple.predicate),
            object: Some(triple.object),
        };
        Ok(self.trees().triples(pattern).next().transpose()?.is_some())
    }

    /// The ids of a triple by name, once its names are in the store (after
    /// [`StoreWriter::apply`]); `None` for a name the store does not hold.
    pub fn triple_ids(
        &self,
        subject: &str,
        predicate: &str,
        object: &str,
    ) -> Result<Option<Triple>, StoreError> {
        let trees = self.trees();
        let (Some(s), Some(p), Some(o)) = (
            trees.term_id(subject)?,
            trees.predicate_id(predicate)?,
            trees.term_id(object)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Triple {
            subject: s,
            predicate: p,
            object: o,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::triple;
    use super::*;

    fn record(document: &str, score: f32, time: u64) -> Provenance {
        Provenance {
            document: document.into(),
            score,
            stage: "relation".into(),
            model: Some("m".into()),
            time,
            head_span: [0, 2],
            tail_span: [3, 5],
        }
    }

    #[test]
    fn records_are_kept_once_per_identity_and_survive_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        writer.apply(&[triple("母亲", "Family", "我")]).unwrap();
        let t = writer.triple_ids("母亲", "Family", "我").unwrap().unwrap();
        assert!(writer.add_provenance(&t, &record("d1", 0.9, 1)).unwrap());
        assert!(!writer.add_provenance(&t, &record("d1", 0.95, 2)).unwrap());
        assert!(writer.add_provenance(&t, &record("d2", 0.9, 1)).unwrap());
        writer.commit().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let found = store.provenance(&t).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.contains(&record("d1", 0.9, 1)) && found.contains(&record("d2", 0.9, 1)));
        assert!(store.has_provenance(&t, &record("d2", 0.1, 9)).unwrap());
    }
}
