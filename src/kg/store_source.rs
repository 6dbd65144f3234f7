//! [`KnowledgeSource`] for the sled KG store (and for shared handles to any source).
use std::collections::HashMap;
use std::sync::Arc;

use crate::kg::identity::{IdentityHasher, KgIdentity};
use crate::kg::store::{Pattern, Store, StoreError};
use crate::kg::transe::TransE;

/// File name of the TransE vectors in a store's artifact directory
/// (written by `zhishi transe train --db`).
pub const TRANSE_VECTORS_FILE: &str = "transe.safetensors";

use crate::kg::source::{EntityId, EntityInfo, Fact, KnowledgeSource, SourceError};

fn backend(what: &'static str) -> impl Fn(StoreError) -> SourceError {
    move |e| SourceError::Backend {
        what,
        message: e.to_string(),
    }
}

impl KnowledgeSource for Store {
    fn for_each_name(&self, f: &mut dyn FnMut(&str, EntityId)) -> Result<(), SourceError> {
        for item in self.names() {
            let (name, id) = item.map_err(backend("entity names"))?;
            f(&name, id);
        }
        Ok(())
    }

    fn entity(&self, id: EntityId) -> Result<Option<EntityInfo>, SourceError> {
        Ok(self
            .term(id)
            .map_err(backend("an entity"))?
            .map(|t| EntityInfo {
                name: t.name,
                degree: t.degree,
            }))
    }

    fn facts(&self, id: EntityId, limit: usize) -> Result<Vec<Fact>, SourceError> {
        let err = backend("an entity's triples");
        let pattern = Pattern {
            subject: Some(id),
            ..Pattern::default()
        };
        let mut out = Vec::new();
        for triple in self.triples(pattern).take(limit) {
            let triple = triple.map_err(&err)?;
            let predicate = self.predicate_name(triple.predicate).map_err(&err)?;
            let object = self.term(triple.object).map_err(&err)?;
            if let (Some(predicate), Some(object)) = (predicate, object) {
                out.push(Fact {
                    predicate,
                    object: object.name,
                    object_id: triple.object,
                });
            }
        }
        Ok(out)
    }

    fn embeddings(&self) -> Result<Option<TransE>, SourceError> {
        let path = self
            .artifact_dir()
            .map_err(backend("the artifact directory"))?
            .join(TRANSE_VECTORS_FILE);
        if !path.exists() {
            return Ok(None);
        }
        TransE::load(&path)
            .map(Some)
            .map_err(|e| SourceError::Backend {
                what: "TransE vectors",
                message: e.to_string(),
            })
    }

    /// Reads every triple once (O(store size), names cached per id).
    /// Later calls on the same handle (a second model stage) reuse the result.
    fn identity(&self) -> Result<Option<KgIdentity>, SourceError> {
        if let Some(identity) = self.identity_cache().get() {
            return Ok(Some(identity.clone()));
        }
        let err = backend("the triples (for the KG's identity)");
        let mut terms: HashMap<u32, String> = HashMap::new();
        let mut predicates: HashMap<u32, String> = HashMap::new();
        let mut hasher = IdentityHasher::default();
        for triple in self.triples(Pattern::default()) {
            let t = triple.map_err(&err)?;
            for id in [t.subject, t.object] {
                if let std::collections::hash_map::Entry::Vacant(slot) = terms.entry(id) {
                    let name = self.term(id).map_err(&err)?.map(|t| t.name);
                    slot.insert(name.unwrap_or_default());
                }
            }
            if let std::collections::hash_map::Entry::Vacant(slot) = predicates.entry(t.predicate) {
                let name = self.predicate_name(t.predicate).map_err(&err)?;
                slot.insert(name.unwrap_or_default());
            }
            hasher.add(
                &terms[&t.subject],
                &predicates[&t.predicate],
                &terms[&t.object],
            );
        }
        Ok(Some(
            self.identity_cache()
                .get_or_init(|| hasher.identity())
                .clone(),
        ))
    }
}

impl<T: KnowledgeSource + ?Sized> KnowledgeSource for Arc<T> {
    fn for_each_name(&self, f: &mut dyn FnMut(&str, EntityId)) -> Result<(), SourceError> {
        (**self).for_each_name(f)
    }
    fn entity(&self, id: EntityId) -> Result<Option<EntityInfo>, SourceError> {
        (**self).entity(id)
    }
    fn facts(&self, id: EntityId, limit: usize) -> Result<Vec<Fact>, SourceError> {
        (**self).facts(id, limit)
    }
    fn embeddings(&self) -> Result<Option<TransE>, SourceError> {
        (**self).embeddings()
    }
    fn identity(&self) -> Result<Option<KgIdentity>, SourceError> {
        (**self).identity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::source::MemoryKg;
    use crate::kg::store::{NamedTriple, StoreWriter};

    #[test]
    fn a_store_and_memory_agree_on_the_kgs_identity() {
        let spo = [
            ("头痛", "类别", "症状"),
            ("阑尾炎", "部位", "腹部"),
            ("头痛", "类别", "症状"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut writer = StoreWriter::begin(dir.path()).unwrap();
        let batch: Vec<NamedTriple> = spo
            .iter()
            .map(|(s, p, o)| NamedTriple::literal(s, p, o))
            .collect();
        writer.apply(&batch).unwrap();
        writer.commit().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let memory = MemoryKg::from_triples(spo.iter().rev().copied());
        let from_store = store.identity().unwrap().unwrap();
        assert_eq!(from_store.triples, 2);
        assert_eq!(Some(from_store), memory.identity().unwrap());
    }
}
