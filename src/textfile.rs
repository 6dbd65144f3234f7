//! Reading whole UTF-8 text files the way every data reader here wants them: a leading
//! byte-order mark (which editors on Windows write) is dropped, and invalid UTF-8 is an error
//! naming the file, line and column instead of a bare "stream did not contain valid UTF-8".
use std::path::{Path, PathBuf};

/// The UTF-8 byte-order mark, U+FEFF, as it starts a file.
pub const BOM: &str = "\u{feff}";

/// Why a text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TextFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
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
    fn invalid_utf8_names_line_and_column() {
        let err = decode(Path::new("data/train.bmes"), b"ok\nab\xffc\n".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "data/train.bmes:2: invalid UTF-8 at byte 3 of the line; expected UTF-8 text"
        );
    }
}
