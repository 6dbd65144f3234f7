#!/usr/bin/env bash
# Builds the pretraining corpus of pipelines/pretrain.toml (and pretrain-ernie.toml) from K-BERT's
# medical NER data (not committed: research data): the text column of train.tsv with the spaces
# between characters removed, one sentence per line, in file order, leaving out every sentence
# that also occurs in dev.tsv or test.tsv (the training file repeats many of them verbatim), so
# that fine-tuning scores never measure text the encoder was pretrained on.
#   corpora/medical_pretrain.sh [DATA_DIR] [OUT]
# DATA_DIR defaults to $ZHISHI_DATA/ner/kbert_medical, OUT to target/corpora/medical-pretrain.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
DATA=${1:-$ZHISHI_DATA/ner/kbert_medical}
OUT=${2:-target/corpora/medical-pretrain.txt}
mkdir -p "$(dirname "$OUT")"
text() { tail -n +2 "$1" | cut -f1 | tr -d ' ' | grep -v '^$' || true; }
HELD=$(mktemp)
trap 'rm -f "$HELD"' EXIT
{ text "$DATA/dev.tsv"; text "$DATA/test.tsv"; } | sort -u > "$HELD"
# Skip the header; keep column 1; drop the spaces; drop held-out sentences (exact match).
text "$DATA/train.tsv" | awk 'NR == FNR { held[$0] = 1; next } !($0 in held)' "$HELD" - > "$OUT"
echo "$OUT: $(wc -l < "$OUT") lines, $(wc -m < "$OUT") characters ($(wc -l < "$HELD") dev/test sentences left out)" >&2
