//! RDF N-Triples: IRIs, blank nodes and quoted literals (language tags and datatypes
//! dropped) with their escapes.
use super::delimited::field;
use crate::kg::store::{NamedTriple, TermKind};

/// One N-Triples line: `<s> <p> <o> .` where objects may be literals with a language tag
/// or datatype; `#` comments and blank lines carry no triple.
pub(super) fn parse_ntriples(line: &str) -> Result<Option<NamedTriple>, String> {
    let rest = line.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let (subject, rest) = nt_resource(rest, "subject")?;
    let (predicate, rest) = nt_resource(rest.trim_start(), "predicate")?;
    let rest = rest.trim_start();
    let (object, kind, rest) = if rest.starts_with('"') {
        let (value, rest) = nt_literal(rest)?;
        (value, TermKind::Literal, rest)
    } else {
        let (value, rest) = nt_resource(rest, "object")?;
        (value, TermKind::Entity, rest)
    };
    let rest = rest.trim();
    if rest != "." && !rest.starts_with(". #") && !rest.starts_with(".#") {
        return Err(format!("expected `.` after the object, found {rest:?}"));
    }
    Ok(Some(NamedTriple {
        subject: field(&subject, "subject")?,
        predicate: field(&predicate, "predicate")?,
        object: field(&object, "object")?,
        object_kind: kind,
    }))
}

/// An IRI `<...>` or blank node `_:x`, returning its text and the rest of the line.
fn nt_resource<'a>(s: &'a str, what: &str) -> Result<(String, &'a str), String> {
    if let Some(rest) = s.strip_prefix('<') {
        let end = rest
            .find('>')
            .ok_or_else(|| format!("unterminated IRI in the {what}"))?;
        Ok((unescape_nt(&rest[..end])?, &rest[end + 1..]))
    } else if s.starts_with("_:") {
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        Ok((s[..end].to_string(), &s[end..]))
    } else {
        Err(format!(
            "expected an IRI `<...>` or blank node `_:x` as the {what}"
        ))
    }
}

/// A quoted literal with optional `@lang` or `^^<datatype>` suffix (dropped).
fn nt_literal(s: &str) -> Result<(String, &str), String> {
    let body = &s[1..];
    let mut escaped = false;
    let mut end = None;
    for (i, c) in body.char_indices() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    let end = end.ok_or("unterminated literal")?;
    let value = unescape_nt(&body[..end])?;
    let mut rest = &body[end + 1..];
    if let Some(tagged) = rest.strip_prefix('@') {
        let stop = tagged
            .find(|c: char| c.is_whitespace() || c == '.')
            .unwrap_or(tagged.len());
        rest = &tagged[stop..];
    } else if let Some(typed) = rest.strip_prefix("^^") {
        let (_, after) = nt_resource(typed, "datatype")?;
        rest = after;
    }
    Ok((value, rest))
}

fn unescape_nt(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            Some('\\') => out.push('\\'),
            Some(u @ ('u' | 'U')) => {
                let len = if u == 'u' { 4 } else { 8 };
                let hex: String = chars.by_ref().take(len).collect();
                let complete = hex.len() == len && hex.chars().all(|c| c.is_ascii_hexdigit());
                let code = complete
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad escape \\{u}{hex}"))?;
                out.push(code);
            }
            other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::import::tests::spo;

    #[test]
    fn parses_ntriples_with_literals() {
        let t = spo(parse_ntriples(r#"<http://x/a> <http://x/name> "北京\u5E02"@zh ."#).unwrap());
        assert_eq!(t.0, "http://x/a");
        assert_eq!(t.2, "北京市");
        assert_eq!(t.3, TermKind::Literal);
        let t = spo(parse_ntriples("<http://x/a> <http://x/p> _:b1 .").unwrap());
        assert_eq!((t.2.as_str(), t.3), ("_:b1", TermKind::Entity));
        let t = spo(parse_ntriples(
            r#"<a> <p> "42"^^<http://www.w3.org/2001/XMLSchema#integer> ."#,
        )
        .unwrap());
        assert_eq!(t.2, "42");
        assert!(parse_ntriples("# comment").unwrap().is_none());
        assert!(parse_ntriples("<a> <p> <o>")
            .unwrap_err()
            .contains("expected `.`"));
        assert!(parse_ntriples("a <p> <o> .").is_err());
        // Escapes take exactly 4 (\u) or 8 (\U) hex digits.
        for bad in [
            r#"<a> <p> "\u12" ."#,
            r#"<a> <p> "\u+012" ."#,
            r#"<a> <p> "\U0001F60" ."#,
        ] {
            let err = parse_ntriples(bad).unwrap_err();
            assert!(err.contains("bad escape"), "{bad}: {err}");
        }
    }
}
