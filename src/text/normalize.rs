//! Text normalisation for matching: full-width -> half-width, case folding and
//! whitespace removal, with a byte-offset map back to the original text.
//!
//! Matching runs on the normalised string; every span found there is mapped
//! back with [`Normalized::original_span`], so callers always report offsets
//! into the text they were given.

/// Which folds [`normalize`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeOptions {
    /// Map full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space to ASCII.
    pub fold_width: bool,
    /// Lower-case letters (Unicode simple lower-casing).
    pub fold_case: bool,
    /// Drop whitespace, so `lumia 1020` and `lumia1020` match the same name.
    pub strip_whitespace: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            fold_width: true,
            fold_case: true,
            strip_whitespace: true,
        }
    }
}

/// A normalised string plus, for every byte boundary of it, the matching
/// byte offsets in the original text.
#[derive(Debug, Clone)]
pub struct Normalized {
    text: String,
    /// `starts[i]`: original byte offset where the char starting at normalised byte `i` begins
    /// (empty when nothing was folded: offsets are then the same in both texts).
    starts: Vec<u32>,
    /// `ends[i]`: original byte offset where the char ending at normalised byte `i` ends.
    ends: Vec<u32>,
}

impl Normalized {
    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Maps a byte span `[start, end)` of the normalised text (on char
    /// boundaries) to the byte span of the original text it came from.
    /// Out-of-range or inverted spans are clamped; an empty span maps to an
    /// empty span.
    pub fn original_span(&self, start: usize, end: usize) -> (usize, usize) {
        let len = self.text.len();
        let start = start.min(len);
        let end = end.clamp(start, len);
        if self.starts.is_empty() {
            return (start, end);
        }
        let s = self.starts[start] as usize;
        if end == start {
            return (s, s);
        }
        (s, self.ends[end] as usize)
    }
}

/// Maps one char to its normalised form (written to `out`); returns false if it is dropped.
fn fold_char(c: char, opts: NormalizeOptions, out: &mut String) -> bool {
    if is_han(c) {
        out.push(c);
        return true;
    }
    if opts.strip_whitespace && c.is_whitespace() {
        return false;
    }
    let mut c = c;
    if opts.fold_width {
        c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        if opts.strip_whitespace && c == ' ' {
            return false;
        }
    }
    if opts.fold_case && c.is_uppercase() {
        out.extend(c.to_lowercase());
    } else {
        out.push(c);
    }
    true
}

/// Whether `c` is a CJK unified ideograph (basic block or extension A). No fold changes one,
/// so [`fold_char`] checks this first and skips the Unicode whitespace and case tables for most
/// Chinese text.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

/// Whether [`fold_char`] would change or drop `c`.
fn folds(c: char, opts: NormalizeOptions) -> bool {
    !is_han(c)
        && ((opts.strip_whitespace && c.is_whitespace())
            || (opts.fold_width && matches!(c, '\u{3000}' | '\u{FF01}'..='\u{FF5E}'))
            || (opts.fold_case && c.is_uppercase()))
}

/// Normalises `text` for matching and records the offset map back to it.
pub fn normalize(text: &str, opts: NormalizeOptions) -> Normalized {
    // Most Chinese text has nothing to fold: copy it and skip the offset map
    // (building the map was ~4% of linking time).
    if !text.chars().any(|c| folds(c, opts)) {
        return Normalized {
            text: text.to_string(),
            starts: Vec::new(),
            ends: Vec::new(),
        };
    }
    let mut out = String::with_capacity(text.len());
    let mut starts = Vec::with_capacity(text.len() + 1);
    let mut ends = Vec::with_capacity(text.len() + 1);
    ends.push(0);
    for (pos, c) in text.char_indices() {
        let before = out.len();
        if !fold_char(c, opts, &mut out) {
            continue;
        }
        let orig_start = pos as u32;
        let orig_end = (pos + c.len_utf8()) as u32;
        for _ in before..out.len() {
            starts.push(orig_start);
        }
        // Interior bytes of the new chars are never span ends; point them at
        // the char's end so clamped spans stay valid.
        for _ in before + 1..=out.len() {
            ends.push(orig_end);
        }
    }
    starts.push(text.len() as u32);
    Normalized {
        text: out,
        starts,
        ends,
    }
}

/// Normalises a name (no offset map): the key under which names are matched.
pub fn normalize_key(name: &str, opts: NormalizeOptions) -> String {
    let mut out = String::with_capacity(name.len());
    normalize_into(name, opts, &mut out);
    out
}

/// Appends the normalised form of `text` to `out` (no offset map, no allocation when `out` has room).
pub fn normalize_into(text: &str, opts: NormalizeOptions, out: &mut String) {
    for c in text.chars() {
        fold_char(c, opts, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_letters_and_spaces_fold_to_matching_form() {
        let n = normalize("Ｌｕｍｉａ　1020 手机", NormalizeOptions::default());
        assert_eq!(n.as_str(), "lumia1020手机");
    }

    #[test]
    fn spans_map_back_to_the_original_text() {
        let text = "我用 ＬＵＭＩＡ 1020。";
        let n = normalize(text, NormalizeOptions::default());
        let found = n.as_str().find("lumia1020").unwrap();
        let (s, e) = n.original_span(found, found + "lumia1020".len());
        assert_eq!(&text[s..e], "ＬＵＭＩＡ 1020");
    }

    #[test]
    fn keeping_whitespace_keeps_it_verbatim() {
        let opts = NormalizeOptions {
            strip_whitespace: false,
            ..NormalizeOptions::default()
        };
        assert_eq!(normalize_key("Lumia 1020", opts), "lumia 1020");
    }

    #[test]
    fn empty_text_has_an_empty_map() {
        let n = normalize("", NormalizeOptions::default());
        assert_eq!(n.original_span(0, 0), (0, 0));
    }
}
