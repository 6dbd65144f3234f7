#!/usr/bin/env bash
# TransE side by side: zhishi vs PyKEEN (../shared/reference/transe_pykeen.py), same data,
# dim, negatives, batch size, epochs, seed and threads, run back to back in one invocation.
#
#   benches/transe_vs_pykeen.sh [DATA_DIR] [FORMAT] [EPOCHS]
#   defaults: $ZHISHI_DATA/kg/openke/FB15K237 openke 50; env: DIM=100 BATCH=1024 NEGS=1
#   THREADS=2 LR=1.0 MARGIN=5 SEED=42 PY=<reference venv python> OUT=target/transe_vs_pykeen.jsonl
#   BIN=<prebuilt zhishi binary> (default: cargo build --release)
#
# Three rows, one JSON object per line (stdout and $OUT), each with "impl" and "wall_seconds"
# (whole process, including data loading and evaluation), "date", "commit" and "cpu":
#   pykeen          PyKEEN TransE: margin loss, SGD, unit entity norm, uniform corruption
#   zhishi-same     zhishi with exactly that algorithm
#   zhishi-default  zhishi's default objective (self-adversarial loss, Adagrad, bern) at the
#                   same dim / negatives / batch / epochs
# Compare ratios within one run only: the machine is shared and timings drift.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
DATA=${1:-$ZHISHI_DATA/kg/openke/FB15K237}
FORMAT=${2:-openke}
EPOCHS=${3:-50}
DIM=${DIM:-100} BATCH=${BATCH:-1024} NEGS=${NEGS:-1} THREADS=${THREADS:-2}
LR=${LR:-1.0} MARGIN=${MARGIN:-5} SEED=${SEED:-42}
PY=${PY:-${REF_PYTHON:?set REF_PYTHON to the reference venv python (see ../shared/reference/setup.sh)}}
OUT=${OUT:-target/transe_vs_pykeen.jsonl}

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=target/release/zhishi
fi
# Where and when, for the JSON (and `zhishi chart`'s labels).
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
COMMON=(--data "$DATA" --format "$FORMAT" --dim "$DIM" --epochs "$EPOCHS" --batch-size "$BATCH"
        --negatives "$NEGS" --seed "$SEED" --threads "$THREADS" --norm 1)

# Runs a command, prints its JSON line with "impl" and "wall_seconds" added.
row() {
  local name=$1; shift
  local start end line
  start=$(date +%s.%N)
  line=$("$@" | tail -1)
  end=$(date +%s.%N)
  "$PY" -c 'import json,os,sys; d=json.loads(sys.argv[1]); d["impl"]=sys.argv[2]; d["wall_seconds"]=round(float(sys.argv[4])-float(sys.argv[3]),2); d.update(date=os.environ["BENCH_DATE"], commit=os.environ["BENCH_COMMIT"], cpu=os.environ["BENCH_CPU"]); print(json.dumps(d))' \
    "$line" "$name" "$start" "$end" | tee -a "$OUT"
}

mkdir -p "$(dirname "$OUT")"
row pykeen "$PY" ../shared/reference/transe_pykeen.py --dataset "$DATA" --format "$FORMAT" --dim "$DIM" \
  --epochs "$EPOCHS" --batch-size "$BATCH" --negs "$NEGS" --lr "$LR" --margin "$MARGIN" --norm 1 \
  --optimizer sgd --seed "$SEED" --threads "$THREADS"
row zhishi-same "$BIN" transe bench "${COMMON[@]}" --loss margin --optimizer sgd --lr "$LR" \
  --margin "$MARGIN" --corruption uniform --entity-norm unit
row zhishi-default "$BIN" transe bench "${COMMON[@]}"
