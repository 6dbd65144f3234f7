//! Key and value encoding: fixed-width big-endian ids, packed sorted lists of id pairs,
//! term records, name checks, and the aliases derived from a canonical name.
use super::{StoreError, Term, TermId, TermKind};

pub(super) fn be(id: u32) -> [u8; 4] {
    id.to_be_bytes()
}

pub(super) fn read_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

pub(super) fn unpack_pairs(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
}

pub(super) fn encode_term_info(kind: TermKind, degree: u32, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + name.len());
    out.push(match kind {
        TermKind::Entity => 1,
        TermKind::Literal => 2,
    });
    out.extend_from_slice(&degree.to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

pub(super) fn decode_term_info(id: TermId, bytes: &[u8]) -> Option<Term> {
    let kind = match *bytes.first()? {
        1 => TermKind::Entity,
        2 => TermKind::Literal,
        _ => return None,
    };
    let degree = read_u32(bytes.get(1..)?)?;
    let name = std::str::from_utf8(bytes.get(5..)?).ok()?.to_string();
    Some(Term {
        id,
        name,
        kind,
        degree,
    })
}

pub(super) fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::InvalidName {
            name: name.to_string(),
            reason: "empty",
        });
    }
    if name.contains('\0') {
        return Err(StoreError::InvalidName {
            name: name.to_string(),
            reason: "contains a NUL character",
        });
    }
    Ok(())
}

pub(super) fn pack_pairs(items: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 8);
    for x in items {
        out.extend_from_slice(&x.to_be_bytes());
    }
    out
}

pub(super) fn pair(x: u64) -> (u32, u32) {
    ((x >> 32) as u32, x as u32)
}

/// The pairs of a sorted packed list whose first half equals `first`.
pub(super) fn pairs_with_first(list: &[u64], first: u32) -> &[u64] {
    let lo = list.partition_point(|&x| ((x >> 32) as u32) < first);
    let hi = list.partition_point(|&x| ((x >> 32) as u32) <= first);
    &list[lo..hi]
}

/// Alternative names derived from a canonical name: the name without a trailing bracketed
/// disambiguation (`苹果（水果）` -> `苹果`) and without book-title brackets
/// (`《哈姆雷特》` -> `哈姆雷特`).
pub fn derived_aliases(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let trimmed = name.trim();
    for (open, close) in [('（', '）'), ('(', ')')] {
        if trimmed.ends_with(close) {
            if let Some(pos) = trimmed.rfind(open) {
                let base = trimmed[..pos].trim();
                if !base.is_empty() {
                    out.push(base.to_string());
                }
            }
        }
    }
    if let Some(inner) = trimmed
        .strip_prefix('《')
        .and_then(|rest| rest.strip_suffix('》'))
    {
        if !inner.is_empty() && !inner.contains('《') {
            out.push(inner.to_string());
        }
    }
    out.retain(|alias| alias != name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_aliases_from_brackets() {
        assert_eq!(derived_aliases("苹果（水果）"), vec!["苹果"]);
        assert_eq!(derived_aliases("《哈姆雷特》"), vec!["哈姆雷特"]);
        assert_eq!(derived_aliases("Python (language)"), vec!["Python"]);
        assert!(derived_aliases("高等数学").is_empty());
    }
}
