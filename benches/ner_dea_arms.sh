#!/usr/bin/env bash
# ERNIE-mode NER on ner/kbert_medical (CRF head) from three encoders, same data, steps, batch,
# learning rate, max length, TransE vectors and threads, for each seed:
#   fresh       encoder.model = $M3E_DIR: aggregators start fresh (the ERNIE arm of
#               ner_knowledge_arms.sh)
#   dea         encoder.model = the dEA-pretrained directory (`zhishi pretrain
#               pipelines/pretrain-ernie.toml`): token side and aggregators from the pretraining
#   dea-tokens  the same directory without ernie.safetensors/ernie.json (symlinks to the rest):
#               the pretrained token side with fresh aggregators, to tell what the aggregators
#               add apart from the continued masked-LM training
# One JSON line per arm and seed in target/ner-dea-n<N>-e<E>/arms.jsonl:
#   {"arm","seed","test_f1","test_precision","test_recall","dev_f1","train_wall_s","train_tokens",
#    "train_tokens_per_s","date","commit","cpu"}.
#   M3E_DIR=... benches/ner_dea_arms.sh PRETRAINED_DIR [MAX_TRAIN] [EPOCHS] [SEEDS] [ARMS]
# SEEDS and ARMS are comma lists (default "42,43" and "fresh,dea,dea-tokens"). Env: BIN, THREADS
# (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
PRE=$(realpath -m "${1:?the dEA-pretrained model directory}")
N=${2:-1000}; E=${3:-2}; SEEDS=${4:-42,43}; ARMS=${5:-fresh,dea,dea-tokens}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
OUT=target/ner-dea-n$N-e$E; mkdir -p "$OUT"
TOKENS=$PWD/$OUT/dea-tokens-encoder
if [ "$ARMS" != fresh ]; then
  [ -f "$PRE/ernie.safetensors" ] || { echo "$PRE has no ernie.safetensors" >&2; exit 1; }
  mkdir -p "$TOKENS"
  for f in "$PRE"/*; do
    case $(basename "$f") in ernie.safetensors|ernie.json) ;; *) ln -sf "$f" "$TOKENS/" ;; esac
  done
fi
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
TOML=pipelines/ernie-medical-ner.toml
for seed in ${SEEDS//,/ }; do
  for arm in ${ARMS//,/ }; do
    case $arm in fresh) ENC=$M3E_DIR ;; dea) ENC=$PRE ;; dea-tokens) ENC=$TOKENS ;;
      *) echo "unknown arm $arm" >&2; exit 1 ;; esac
    echo "$(date -u +%T) arm $arm seed $seed (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    SETS=(--set train.epochs="$E" --set data.max_train="$N" --set head.crf=true
          --set train.threads="$THREADS" --set train.seed="$seed" --set encoder.model="$ENC"
          --set train.output_dir="../$OUT/$arm-s$seed" --set train.progress=false)
    $BIN train $TOML "${SETS[@]}" > "$OUT/$arm-s$seed-train.json"
    $BIN eval $TOML --split test "${SETS[@]}" > "$OUT/$arm-s$seed-test.json"
    python3 -c 'import json,os,sys; t=json.load(open(sys.argv[1])); e=json.load(open(sys.argv[2])); print(json.dumps({"arm":sys.argv[3],"seed":int(sys.argv[4]),"test_f1":e["f1"],"test_precision":e["precision"],"test_recall":e["recall"],"dev_f1":t["f1"],"train_wall_s":t["train_seconds"],"train_tokens":t["tokens"],"train_tokens_per_s":t["tokens_per_s"],"date":os.environ["BENCH_DATE"],"commit":os.environ["BENCH_COMMIT"],"cpu":os.environ["BENCH_CPU"]}))' \
        "$OUT/$arm-s$seed-train.json" "$OUT/$arm-s$seed-test.json" "$arm" "$seed" >> "$OUT/arms.jsonl"
    tail -1 "$OUT/arms.jsonl" >&2
  done
done
