#!/usr/bin/env bash
# Builds the pretraining corpus of pipelines/pretrain.toml from K-BERT's medical NER data
# (not committed: research data): the text column of train.tsv with the spaces between
# characters removed, one sentence per line, in file order.
#   corpora/medical_pretrain.sh [DATA_DIR] [OUT]
# DATA_DIR defaults to ../shared/data/ner/kbert_medical, OUT to target/corpora/medical-pretrain.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/ner/kbert_medical}
OUT=${2:-target/corpora/medical-pretrain.txt}
mkdir -p "$(dirname "$OUT")"
# Skip the header; keep column 1; drop the spaces the data puts between characters.
tail -n +2 "$DATA/train.tsv" | cut -f1 | tr -d ' ' | grep -v '^$' > "$OUT"
echo "$OUT: $(wc -l < "$OUT") lines, $(wc -m < "$OUT") characters" >&2
