#!/usr/bin/env bash
# Builds the unlabelled text of pipelines/distill-medical-ner.toml from K-BERT's medical NER
# data (not committed: research data): the text column of train.tsv after its first SKIP
# sentences (the labelled ones the teacher trained on), spaces between characters removed, one
# sentence per line, leaving out every sentence that also occurs in test.tsv (the data repeats
# templated sentences across splits; the test sentences must never reach training).
#   corpora/medical_unlabelled.sh [DATA_DIR] [OUT] [SKIP]
# DATA_DIR defaults to $ZHISHI_DATA/ner/kbert_medical, OUT to
# target/corpora/medical-unlabelled.txt, SKIP to 3000.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
DATA=${1:-$ZHISHI_DATA/ner/kbert_medical}
OUT=${2:-target/corpora/medical-unlabelled.txt}
SKIP=${3:-3000}
mkdir -p "$(dirname "$OUT")"
TEST=$(mktemp)
trap 'rm -f "$TEST"' EXIT
tail -n +2 "$DATA/test.tsv" | cut -f1 | tr -d ' ' | grep -v '^$' | sort -u > "$TEST"
# Skip the header and the first SKIP sentences; keep column 1; drop the spaces.
tail -n +$((SKIP + 2)) "$DATA/train.tsv" | cut -f1 | tr -d ' ' | grep -v '^$' \
  | grep -vxFf "$TEST" > "$OUT"
echo "$OUT: $(wc -l < "$OUT") lines, $(wc -m < "$OUT") characters" >&2
