//! The identity of a knowledge graph's content: what a trained model records about the KG it
//! was given, and what a pipeline compares it with, so a model never silently runs over
//! another KG than the one it learned from.
//!
//! The hash is the sum (mod 2^128) of the first 16 bytes of SHA-256 over each distinct
//! `subject\tpredicate\tobject`: it does not depend on the order triples arrive in, on
//! duplicates, or on whether the graph lives in memory or in a store.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a KG holds, in two numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KgIdentity {
    /// Distinct triples.
    pub triples: u64,
    /// The order-independent content hash (32 hex digits), see the module documentation.
    pub hash: String,
}

impl std::fmt::Display for KgIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} triples, content hash {}", self.triples, self.hash)
    }
}

/// Accumulates a [`KgIdentity`] triple by triple; give each distinct triple once.
#[derive(Debug, Clone, Default)]
pub struct IdentityHasher {
    triples: u64,
    sum: u128,
}

impl IdentityHasher {
    /// Adds one distinct triple.
    pub fn add(&mut self, subject: &str, predicate: &str, object: &str) {
        let mut sha = Sha256::new();
        sha.update(subject.as_bytes());
        sha.update(b"\t");
        sha.update(predicate.as_bytes());
        sha.update(b"\t");
        sha.update(object.as_bytes());
        let digest = sha.finalize();
        let mut head = [0u8; 16];
        head.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(head));
        self.triples += 1;
    }

    /// The identity of the triples added so far.
    pub fn identity(&self) -> KgIdentity {
        KgIdentity {
            triples: self.triples,
            hash: format!("{:032x}", self.sum),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ignores_order_and_tells_contents_apart() {
        let mut a = IdentityHasher::default();
        a.add("头痛", "类别", "症状");
        a.add("发热", "类别", "症状");
        let mut b = IdentityHasher::default();
        b.add("发热", "类别", "症状");
        b.add("头痛", "类别", "症状");
        assert_eq!(a.identity(), b.identity());
        let mut c = IdentityHasher::default();
        c.add("头痛", "类别", "症状");
        c.add("发热", "类别", "疾病");
        assert_ne!(a.identity().hash, c.identity().hash);
        // Field boundaries count: "ab|c" is not "a|bc".
        let (mut d, mut e) = (IdentityHasher::default(), IdentityHasher::default());
        d.add("ab", "c", "x");
        e.add("a", "bc", "x");
        assert_ne!(d.identity().hash, e.identity().hash);
    }
}
