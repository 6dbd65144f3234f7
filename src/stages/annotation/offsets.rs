//! Offsets in the units annotation tools count: characters (Unicode scalar values, Python's
//! `str` indexing) or UTF-16 code units (JavaScript's `String` indexing, where a character
//! beyond U+FFFF, such as an emoji or 𠀀, counts twice).
use serde::{Deserialize, Serialize};

/// The unit of a file's offsets (`[data] offsets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetUnit {
    /// Characters (Unicode scalar values).
    Chars,
    /// UTF-16 code units.
    Utf16,
}

impl OffsetUnit {
    /// The other unit.
    pub fn other(self) -> Self {
        match self {
            OffsetUnit::Chars => OffsetUnit::Utf16,
            OffsetUnit::Utf16 => OffsetUnit::Chars,
        }
    }

    /// Its name in messages and in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            OffsetUnit::Chars => "chars",
            OffsetUnit::Utf16 => "utf16",
        }
    }
}

/// Converts offsets of one text between characters and UTF-16 code units.
#[derive(Debug, Clone)]
pub struct Offsets {
    /// UTF-16 offset of each character, and the total at the end (`chars + 1` entries).
    utf16: Vec<usize>,
}

impl Offsets {
    /// The offsets of `text`.
    pub fn new(text: &str) -> Self {
        let mut utf16 = Vec::with_capacity(text.len() + 1);
        let mut at = 0;
        for c in text.chars() {
            utf16.push(at);
            at += c.len_utf16();
        }
        utf16.push(at);
        Self { utf16 }
    }

    /// Characters in the text.
    pub fn chars(&self) -> usize {
        self.utf16.len() - 1
    }

    /// Length in `unit`.
    pub fn len_in(&self, unit: OffsetUnit) -> usize {
        match unit {
            OffsetUnit::Chars => self.chars(),
            OffsetUnit::Utf16 => self.utf16[self.chars()],
        }
    }

    /// The character offset of `offset` counted in `unit`: `Err` names the problem (past the
    /// end, or inside a character that takes two UTF-16 code units).
    pub fn to_char(&self, offset: usize, unit: OffsetUnit) -> Result<usize, String> {
        let len = self.len_in(unit);
        if offset > len {
            return Err(format!(
                "offset {offset} is past the end of the text ({len} {})",
                unit_words(unit)
            ));
        }
        match unit {
            OffsetUnit::Chars => Ok(offset),
            OffsetUnit::Utf16 => self.utf16.binary_search(&offset).map_err(|_| {
                format!(
                    "UTF-16 offset {offset} falls inside a character beyond U+FFFF (two code units)"
                )
            }),
        }
    }

    /// The offset in `unit` of character `offset` (clamped to the end of the text).
    pub fn from_char(&self, offset: usize, unit: OffsetUnit) -> usize {
        let offset = offset.min(self.chars());
        match unit {
            OffsetUnit::Chars => offset,
            OffsetUnit::Utf16 => self.utf16[offset],
        }
    }
}

fn unit_words(unit: OffsetUnit) -> &'static str {
    match unit {
        OffsetUnit::Chars => "characters",
        OffsetUnit::Utf16 => "UTF-16 code units",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astral_characters_count_twice_in_utf16() {
        // 𠀀 (U+20000) and 🙂 are beyond U+FFFF.
        let o = Offsets::new("a𠀀b🙂c");
        assert_eq!(o.chars(), 5);
        assert_eq!(o.len_in(OffsetUnit::Utf16), 7);
        assert_eq!(o.to_char(3, OffsetUnit::Utf16), Ok(2));
        assert_eq!(o.to_char(6, OffsetUnit::Utf16), Ok(4));
        assert!(o
            .to_char(2, OffsetUnit::Utf16)
            .unwrap_err()
            .contains("inside"));
        assert!(o
            .to_char(8, OffsetUnit::Utf16)
            .unwrap_err()
            .contains("past the end"));
        assert_eq!(o.from_char(4, OffsetUnit::Utf16), 6);
        assert_eq!(o.from_char(4, OffsetUnit::Chars), 4);
    }
}
