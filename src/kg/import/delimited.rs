//! Delimited text formats: TSV / K-BERT `.spo` lines and NLPCC 2016 KBQA `s ||| p ||| o`
//! lines, and the field checks every format's names go through.
use crate::kg::store::{NamedTriple, TermKind};

pub(super) fn field(value: &str, what: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("empty {what}"));
    }
    if value.contains('\0') {
        return Err(format!("{what} contains a NUL character"));
    }
    Ok(value.to_string())
}

fn literal_triple(s: &str, p: &str, o: &str) -> Result<Option<NamedTriple>, String> {
    Ok(Some(NamedTriple {
        subject: field(s, "subject")?,
        predicate: field(p, "predicate")?,
        object: field(o, "object")?,
        object_kind: TermKind::Literal,
    }))
}

/// `subject<TAB>predicate<TAB>object`; blank lines are skipped.
pub(super) fn parse_tsv(line: &str) -> Result<Option<NamedTriple>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != 3 {
        return Err(format!(
            "expected 3 tab-separated fields (subject, predicate, object), found {}",
            fields.len()
        ));
    }
    literal_triple(fields[0], fields[1], fields[2])
}

/// NLPCC 2016: `s ||| p ||| o`, optionally behind `<triple id=N>\t`; question, answer and
/// separator lines carry no triple.
pub(super) fn parse_nlpcc(line: &str) -> Result<Option<NamedTriple>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty()
        || trimmed.starts_with("<question")
        || trimmed.starts_with("<answer")
        || trimmed.chars().all(|c| c == '=')
    {
        return Ok(None);
    }
    let body = if trimmed.starts_with("<triple") {
        match trimmed.find('>') {
            Some(end) => &trimmed[end + 1..],
            None => return Err("unterminated <triple id=N> tag".into()),
        }
    } else {
        trimmed
    };
    let mut parts = body.splitn(3, "|||");
    match (parts.next(), parts.next(), parts.next()) {
        (Some(s), Some(p), Some(o)) => literal_triple(s, p, o),
        _ => Err("expected `subject ||| predicate ||| object`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::import::tests::spo;

    #[test]
    fn parses_tsv_lines_and_rejects_bad_ones() {
        let t = spo(parse_tsv("眼睛发红\t类别\t症状").unwrap());
        assert_eq!(t.0, "眼睛发红");
        assert_eq!(t.2, "症状");
        assert!(parse_tsv("").unwrap().is_none());
        assert!(parse_tsv("a\tb").unwrap_err().contains("found 2"));
        assert!(parse_tsv("\tb\tc").unwrap_err().contains("empty subject"));
    }

    #[test]
    fn parses_nlpcc_kb_and_training_lines() {
        let t = spo(parse_nlpcc("空气干燥 ||| 外文名 ||| air drying").unwrap());
        assert_eq!(
            (t.0.as_str(), t.1.as_str(), t.2.as_str()),
            ("空气干燥", "外文名", "air drying")
        );
        let t = spo(
            parse_nlpcc("<triple id=1>\t机械设计基础 ||| 作者 ||| 杨可桢，程光蕴，李仲生").unwrap(),
        );
        assert_eq!(t.0, "机械设计基础");
        assert_eq!(t.2, "杨可桢，程光蕴，李仲生");
        assert!(
            parse_nlpcc("<question id=1>\t《机械设计基础》这本书的作者是谁？")
                .unwrap()
                .is_none()
        );
        assert!(parse_nlpcc("<answer id=1>\t杨可桢").unwrap().is_none());
        assert!(
            parse_nlpcc("==================================================")
                .unwrap()
                .is_none()
        );
        assert!(parse_nlpcc("只有 ||| 两段").is_err());
    }
}
