#!/usr/bin/env bash
# Downstream value of continued pretraining: kbert_medical NER (CRF), plain and K-BERT, two
# seeds each (`zhishi compare --knowledge plain,kbert --seeds 2`), once from m3e-small and once
# from a continued-pretrained checkpoint (e.g. the entity-masking arm of
# benches/masking_arms.sh), with the same data, steps, batch, learning rate and threads.
# Writes target/pretrained-downstream/{m3e,NAME}.json (+ .svg) and the tables on stdout.
#   M3E_DIR=... benches/pretrained_downstream.sh PRETRAINED_DIR [MAX_TRAIN] [EPOCHS]
# MAX_TRAIN defaults to 1000 sentences, EPOCHS to 2. Env: BIN (default target/release/zhishi),
# THREADS (default 2), NAME (the pretrained arm's file name, default `pretrained`), BASELINE=0 to
# skip the m3e-small arm (e.g. when comparing several checkpoints against one baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
PRE=$(realpath -m "${1:?the continued-pretrained model directory}")
N=${2:-1000}; E=${3:-2}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
OUT=target/pretrained-downstream; mkdir -p "$OUT"
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
NAME=${NAME:-pretrained}
ARMS="$NAME"; [ "${BASELINE:-1}" = 0 ] || ARMS="m3e $NAME"
for arm in $ARMS; do
  case $arm in m3e) ENC=$M3E_DIR ;; *) ENC=$PRE ;; esac
  echo "$(date -u +%T) encoder $arm: $ENC (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  $BIN compare pipelines/kbert-medical-ner.toml --knowledge plain,kbert --seeds 2 \
    --set encoder.model="$ENC" --set data.max_train="$N" --set train.epochs="$E" \
    --set train.threads="$THREADS" --set train.progress=false \
    --set train.output_dir="../$OUT/$arm" --out "$OUT/$arm.json"
done
