//! `zhishi encode` (A1): a batch line is bounded before it is parsed and before it is encoded.
use super::*;

/// `zhishi encode` on the tiny fixture (64 ids, 40 positions) with `stdin`.
fn encode(stdin: impl Into<Vec<u8>>, extra: &[&str]) -> Output {
    zhishi()
        .arg("encode")
        .arg("--model")
        .arg(encoder_fixture())
        .args(extra)
        .write_stdin(stdin)
        .output()
        .unwrap()
}

/// A batch line of `rows` rows of `len` ids each.
fn batch_line(rows: usize, len: usize) -> String {
    let row = format!("[{}]", vec!["5"; len].join(","));
    format!("{{\"input_ids\": [{}]}}\n", vec![row; rows].join(","))
}

#[test]
fn a1_encode_refuses_a_batch_beyond_the_limit() {
    // 410 rows x 40 ids = 16,400 ids, over the default --max-batch-tokens of 16,384.
    let out = encode(batch_line(410, 40), &[]);
    assert!(!out.status.success(), "a batch over the limit is refused");
    let err = stderr(&out);
    assert!(err.contains("stdin line 1"), "{err}");
    assert!(
        err.contains("16400") && err.contains("--max-batch-tokens"),
        "{err}"
    );
    // Within a lowered limit a batch still encodes; over it, it is refused.
    let out = encode(batch_line(2, 4), &["--max-batch-tokens", "8"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = encode(batch_line(3, 4), &["--max-batch-tokens", "8"]);
    assert!(stderr(&out).contains("12 ids"), "{}", stderr(&out));
}

#[test]
fn a1_encode_refuses_a_row_longer_than_the_models_positions() {
    let out = encode(format!("\n{}", batch_line(1, 41)), &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("stdin line 2"), "{err}");
    assert!(
        err.contains("41") && err.contains("40 positions"),
        "names both sizes: {err}"
    );
}

#[test]
fn a1_encode_refuses_an_oversized_line_before_parsing_it() {
    // Valid JSON, but far more bytes than any batch within the limit can take.
    let mut line = b"{\"input_ids\": [[1, 2".to_vec();
    line.extend(std::iter::repeat_n(b' ', 16 << 20));
    line.extend(b"]]}\n");
    let out = encode(line, &[]);
    assert!(!out.status.success(), "an oversized line is refused");
    let err = stderr(&out);
    assert!(
        err.contains("stdin line 1") && err.contains("bytes"),
        "{err}"
    );
}
