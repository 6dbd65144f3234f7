//! Reading whole UTF-8 text files the way every data reader here wants them: a leading
//! byte-order mark (which editors on Windows write) is dropped, and invalid UTF-8 is an error
//! naming the file, line and column instead of a bare "stream did not contain valid UTF-8".
//! Streamed readers decode line by line with [`decode_line`] or [`lines`], to the same errors.
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// The UTF-8 byte-order mark, U+FEFF, as it starts a file.
pub const BOM: &str = "\u{feff}";

/// Why a text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    /// The file could not be read.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{}:{line}: invalid UTF-8 at byte {column} of the line; expected UTF-8 text", path.display())]
    Utf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first bad byte.
        line: usize,
        /// 1-based byte column of the first bad byte within its line.
        column: usize,
    },
    /// A line is longer than its reader takes.
    #[error("{}:{line}: the line is longer than {limit} bytes", path.display())]
    LineTooLong {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The most bytes a line may hold.
        limit: usize,
    },
}

/// `text` without a leading byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn strip_bom_bytes(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes)
}

/// Reads `path` as UTF-8 text without its byte-order mark.
pub fn read(path: &Path) -> Result<String, TextFileError> {
    let bytes = std::fs::read(path).map_err(|source| TextFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(path, bytes)
}

/// Decodes bytes that came from `path` (for the error) as [`read`] does.
pub fn decode(path: &Path, mut bytes: Vec<u8>) -> Result<String, TextFileError> {
    if bytes.starts_with(BOM.as_bytes()) {
        bytes.drain(..BOM.len());
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        TextFileError::Utf8 {
            path: path.to_path_buf(),
            line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
            column: valid.len() - line_start + 1,
        }
    })
}

/// Decodes line `line` (1-based) of `path` from its `bytes` (with or without the line break)
/// as UTF-8; line 1 loses a leading byte-order mark.
pub fn decode_line(path: &Path, line: usize, mut bytes: Vec<u8>) -> Result<String, TextFileError> {
    let mut skipped = 0;
    if line == 1 && bytes.starts_with(BOM.as_bytes()) {
        bytes.drain(..BOM.len());
        skipped = BOM.len();
    }
    String::from_utf8(bytes).map_err(|e| TextFileError::Utf8 {
        path: path.to_path_buf(),
        line,
        column: skipped + e.utf8_error().valid_up_to() + 1,
    })
}

/// The lines of `reader` (read from `path`, which errors name), each with its 1-based number,
/// without its line break (`\n` or `\r\n`), decoded as [`decode_line`] does; a line longer
/// than `max_bytes` is an error before more of it is read.
pub fn lines<R: BufRead>(path: &Path, reader: R, max_bytes: usize) -> Lines<R> {
    Lines {
        path: path.to_path_buf(),
        reader,
        line: 0,
        max_bytes,
    }
}

/// The iterator of [`lines`].
pub struct Lines<R> {
    path: PathBuf,
    reader: R,
    line: usize,
    max_bytes: usize,
}

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<(usize, String), TextFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.line += 1;
        let cap = u64::try_from(self.max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut buf = Vec::new();
        let n = match self.reader.by_ref().take(cap).read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(source) => {
                return Some(Err(TextFileError::Io {
                    path: self.path.clone(),
                    source,
                }))
            }
        };
        if n == 0 {
            return None;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        } else if n as u64 == cap {
            return Some(Err(TextFileError::LineTooLong {
                path: self.path.clone(),
                line: self.line,
                limit: self.max_bytes,
            }));
        }
        Some(decode_line(&self.path, self.line, buf).map(|text| (self.line, text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_a_byte_order_mark_and_keeps_the_rest() {
        let got = decode(Path::new("x"), "\u{feff}哈姆雷特\t作者\t莎士比亚\n".into()).unwrap();
        assert_eq!(got, "哈姆雷特\t作者\t莎士比亚\n");
        assert_eq!(strip_bom("\u{feff}a\u{feff}"), "a\u{feff}");
        assert_eq!(strip_bom_bytes(b"\xEF\xBB\xBFab"), b"ab");
    }

    #[test]
    fn lines_are_numbered_decoded_and_bounded() {
        let input: &[u8] = b"\xEF\xBB\xBFa\r\nb\n\nab\xffc\n";
        let got: Vec<_> = lines(Path::new("in.txt"), input, 16).collect();
        assert_eq!(got[0].as_ref().unwrap(), &(1, "a".to_string()));
        assert_eq!(got[2].as_ref().unwrap(), &(3, String::new()));
        assert_eq!(
            got[3].as_ref().unwrap_err().to_string(),
            "in.txt:4: invalid UTF-8 at byte 3 of the line; expected UTF-8 text"
        );
        let long: &[u8] = b"ok\n0123456789\n";
        let got: Vec<_> = lines(Path::new("in.txt"), long, 4).collect();
        assert_eq!(
            got[1].as_ref().unwrap_err().to_string(),
            "in.txt:2: the line is longer than 4 bytes"
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let err = decode(Path::new("data/train.bmes"), b"ok\nab\xffc\n".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data/train.bmes:2: invalid UTF-8 at byte 3 of the line; expected UTF-8 text"
        );
    }
}
