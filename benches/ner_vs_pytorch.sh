#!/usr/bin/env bash
# Side-by-side NER fine-tuning: ../shared/reference/ner_finetune.py (PyTorch, linear head) and
# `zhishi train` + `zhishi eval --split test` on the same data, model, epochs, learning rate,
# batch size, max length, seed and threads, run back to back. Writes one JSON object with both
# results to target/bench-ner-<name>.json (and prints it).
#
#   M3E_DIR=/path/to/m3e-small benches/ner_vs_pytorch.sh resume  [MAX_TRAIN] [EPOCHS]
#   M3E_DIR=/path/to/m3e-small benches/ner_vs_pytorch.sh medical [MAX_TRAIN] [EPOCHS]
# Env: PY (reference python), BIN (zhishi binary), CRF=true|false (zhishi head; default false
# = the reference's linear head), KNOWLEDGE=plain|kbert (medical only), THREADS (default 2),
# BATCHING=bucketed|random|tokens|packed (zhishi's train.batching; default: the TOML's).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
NAME=${1:-resume}; N=${2:-0}; E=${3:-3}
PY=${PY:-${REF_PYTHON:?set REF_PYTHON to the reference venv python (see ../shared/reference/setup.sh)}}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}; CRF=${CRF:-false}; KNOWLEDGE=${KNOWLEDGE:-plain}; BATCHING=${BATCHING:-}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
case "$NAME" in
  resume)  D=$ZHISHI_DATA/ner/resume; FMT=bmes; TOML=pipelines/resume-ner.toml
           TR=$D/train.char.bmes; DV=$D/dev.char.bmes; TE=$D/test.char.bmes ;;
  medical) D=$ZHISHI_DATA/ner/kbert_medical; FMT=bio_tsv; TOML=pipelines/kbert-medical-ner.toml
           TR=$D/train.tsv; DV=$D/dev.tsv; TE=$D/test.tsv ;;
  *) echo "unknown data set $NAME (resume|medical)" >&2; exit 2 ;;
esac
TAG=$NAME-n$N-e$E-crf$CRF-$KNOWLEDGE${BATCHING:+-$BATCHING}
OUT=target/bench-ner-$TAG; mkdir -p "$OUT"
# Where and when, for the JSON (and `zhishi chart`'s labels).
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
$PY ../shared/reference/ner_finetune.py --model "$M3E_DIR" --format $FMT --epochs "$E" \
    --max-train "$N" --threads "$THREADS" --batch-size 32 --lr 1e-4 --max-len 256 --seed 42 \
    --train $TR --dev $DV --test $TE > "$OUT/pytorch.json"
SETS=(--set train.epochs="$E" --set data.max_train="$N" --set head.crf="$CRF" --set train.threads="$THREADS"
      --set train.output_dir="../$OUT/zhishi" --set train.progress=false --set knowledge.mode="$KNOWLEDGE")
[ -n "$BATCHING" ] && SETS+=(--set train.batching="$BATCHING")
$BIN train $TOML "${SETS[@]}" > "$OUT/zhishi-train.json"
$BIN eval $TOML --split test "${SETS[@]}" > "$OUT/zhishi-test.json"
python3 - "$OUT" "$TAG" <<'PYEOF'
import json, os, sys
out, tag = sys.argv[1], sys.argv[2]
pt = json.load(open(f"{out}/pytorch.json"))
zt = json.load(open(f"{out}/zhishi-train.json"))
ze = json.load(open(f"{out}/zhishi-test.json"))
res = {
    "bench": tag,
    "pytorch": {k: pt[k] for k in ("dev_f1", "test_f1", "train_wall_s", "train_tokens",
                                   "train_tokens_per_s", "train_padded_tokens_per_s")},
    "zhishi": {"dev_f1": zt["f1"], "test_f1": ze["f1"], "test_precision": ze["precision"],
               "test_recall": ze["recall"], "train_wall_s": zt["train_seconds"],
               "train_tokens": zt["tokens"], "train_tokens_per_s": zt["tokens_per_s"],
               "train_padded_tokens_per_s": zt["padded_tokens_per_s"]},
}
res["ratio_tokens_per_s"] = res["zhishi"]["train_tokens_per_s"] / res["pytorch"]["train_tokens_per_s"]
res["test_f1_diff"] = res["zhishi"]["test_f1"] - res["pytorch"]["test_f1"]
res.update(dict(date=os.environ["BENCH_DATE"], commit=os.environ["BENCH_COMMIT"], cpu=os.environ["BENCH_CPU"]))
json.dump(res, open(f"{out}.json", "w"), indent=1)
print(json.dumps(res))
PYEOF
