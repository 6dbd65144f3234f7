#!/usr/bin/env bash
# NER on ner/kbert_medical with every encoder configuration, one arm after another on the same
# data, epochs, learning rate, batch, max length, seed and threads: the PyTorch reference
# (../shared/reference/ner_finetune.py, linear head, no CRF) and zhishi plain / kbert / ernie,
# each with and without a CRF. One JSON line per arm in target/ner-arms-n<N>-e<E>/arms.jsonl:
#   {"arm","test_f1","test_precision","test_recall","dev_f1","train_wall_s","train_tokens",
#    "train_tokens_per_s","date","commit","cpu"}.
#   M3E_DIR=/path/to/m3e-small benches/ner_knowledge_arms.sh [MAX_TRAIN] [EPOCHS] [ARM...]
# ARMs: pytorch plain-linear plain-crf kbert-linear kbert-crf ernie-linear ernie-crf both-linear
# both-crf (default: all but both-*). Env: PY, BIN, THREADS (default 2), SEED (default 42; other
# seeds write to target/ner-arms-n<N>-e<E>-s<SEED>).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
N=${1:-2000}; E=${2:-2}; shift 2 || true
ARMS=("$@")
[ ${#ARMS[@]} -gt 0 ] || ARMS=(pytorch plain-linear ernie-crf ernie-linear kbert-crf kbert-linear plain-crf)
PY=${PY:-${REF_PYTHON:?set REF_PYTHON to the reference venv python (see ../shared/reference/setup.sh)}}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}
SEED=${SEED:-42}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
D=$ZHISHI_DATA/ner/kbert_medical
OUT=target/ner-arms-n$N-e$E; [ "$SEED" = 42 ] || OUT=$OUT-s$SEED; mkdir -p "$OUT"
# Where and when, for the JSON (and `zhishi chart`'s labels).
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
for arm in "${ARMS[@]}"; do
  echo "$(date -u +%T) arm $arm (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  if [ "$arm" = pytorch ]; then
    $PY ../shared/reference/ner_finetune.py --model "$M3E_DIR" --format bio_tsv --epochs "$E" \
        --max-train "$N" --threads "$THREADS" --batch-size 32 --lr 1e-4 --max-len 256 --seed "$SEED" \
        --train $D/train.tsv --dev $D/dev.tsv --test $D/test.tsv > "$OUT/pytorch.json"
    python3 -c 'import json,os,sys; p=json.load(open(sys.argv[1])); print(json.dumps({"arm":"pytorch-linear","test_f1":p["test_f1"],"dev_f1":p["dev_f1"],"train_wall_s":p["train_wall_s"],"train_tokens":p["train_tokens"],"train_tokens_per_s":p["train_tokens_per_s"],"date":os.environ["BENCH_DATE"],"commit":os.environ["BENCH_COMMIT"],"cpu":os.environ["BENCH_CPU"]}))' "$OUT/pytorch.json" >> "$OUT/arms.jsonl"
    continue
  fi
  mode=${arm%-*}; head=${arm#*-}
  case $mode in plain|kbert) TOML=pipelines/kbert-medical-ner.toml ;; *) TOML=pipelines/ernie-medical-ner.toml ;; esac
  crf=false; [ "$head" = crf ] && crf=true
  SETS=(--set train.epochs="$E" --set data.max_train="$N" --set head.crf="$crf"
        --set train.threads="$THREADS" --set train.seed="$SEED" --set train.output_dir="../$OUT/$arm"
        --set train.progress=false --set knowledge.mode="$mode")
  $BIN train $TOML "${SETS[@]}" > "$OUT/$arm-train.json"
  $BIN eval $TOML --split test "${SETS[@]}" > "$OUT/$arm-test.json"
  python3 -c 'import json,os,sys; t=json.load(open(sys.argv[1])); e=json.load(open(sys.argv[2])); print(json.dumps({"arm":sys.argv[3],"test_f1":e["f1"],"test_precision":e["precision"],"test_recall":e["recall"],"dev_f1":t["f1"],"train_wall_s":t["train_seconds"],"train_tokens":t["tokens"],"train_tokens_per_s":t["tokens_per_s"],"date":os.environ["BENCH_DATE"],"commit":os.environ["BENCH_COMMIT"],"cpu":os.environ["BENCH_CPU"]}))' \
      "$OUT/$arm-train.json" "$OUT/$arm-test.json" "$arm" >> "$OUT/arms.jsonl"
  tail -1 "$OUT/arms.jsonl" >&2
done
