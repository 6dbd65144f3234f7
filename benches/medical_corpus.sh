#!/usr/bin/env bash
# The >= 1 MB medical corpus of `zhishi bench run` (not committed: research data): the text
# column of K-BERT's medical NER data (train, dev, test; spaces between characters removed),
# one sentence per line: 8,613 distinct sentences, 723 KB. To reach MIN_BYTES the train
# sentences follow again, in file order, until the file is at least that long (so about a third
# of the documents are second copies of train sentences; nothing is cached between documents).
#   benches/medical_corpus.sh [DATA_DIR] [OUT] [MIN_BYTES]
# DATA_DIR defaults to $ZHISHI_DATA/ner/kbert_medical, OUT to target/bench-run/medical-1mb.txt,
# MIN_BYTES to 1048576.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
DATA=${1:-$ZHISHI_DATA/ner/kbert_medical}
OUT=${2:-target/bench-run/medical-1mb.txt}
MIN=${3:-1048576}
mkdir -p "$(dirname "$OUT")"
text() { tail -n +2 "$DATA/$1.tsv" | cut -f1 | tr -d ' ' | grep -v '^$'; }
{ text train; text dev; text test; } > "$OUT"
while [ "$(stat -c %s "$OUT")" -lt "$MIN" ]; do
  text train | while IFS= read -r line; do
    printf '%s\n' "$line" >> "$OUT"
    [ "$(stat -c %s "$OUT")" -ge "$MIN" ] && break
  done
done
echo "$OUT: $(wc -l < "$OUT") lines, $(wc -m < "$OUT") characters, $(stat -c %s "$OUT") bytes" >&2
