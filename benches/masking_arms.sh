#!/usr/bin/env bash
# Masking strategies at equal tokens: continued pretraining of m3e-small on the medical slice
# (pipelines/pretrain.toml, corpus from corpora/medical_pretrain.sh) once per strategy - BERT's
# `token`, BERT-wwm's `whole_word`, ERNIE 1.0's `entity` (whole KG mentions, then whole words) -
# with the same seed, batches, steps and learning rate, so every arm trains on the same
# sequences and tokens; then each arm's final model (`train.save_final`) is scored on the same
# held-out sequences under each masking (`zhishi eval`: mlm_loss, mlm_accuracy, entity_accuracy).
# One JSON line per (arm, evaluation masking) in target/masking-arms-s<STEPS>/arms.jsonl:
#   {"arm","eval_masking","mlm_loss","mlm_accuracy","entity_accuracy","masked_tokens",
#    "entity_spans","steps","train_tokens","train_seconds","tokens_per_s","date","commit","cpu"}.
#   M3E_DIR=... benches/masking_arms.sh [STEPS] [ARMS] [EVAL_MASKINGS]
# STEPS defaults to 150 (batch 16 x grad_accum 2 x 128 tokens, 4 epochs' schedule); ARMS and
# EVAL_MASKINGS are comma lists (default "token,whole_word,entity"). Env: BIN (default
# target/release/zhishi), HOLDOUT (held-out sequences, default 128).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-150}; ARMS=${2:-token,whole_word,entity}; EVALS=${3:-token,whole_word,entity}
BIN=${BIN:-target/release/zhishi}
HOLDOUT=${HOLDOUT:-128}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
[ -f target/corpora/medical-pretrain.txt ] || corpora/medical_pretrain.sh
OUT=target/masking-arms-s$STEPS; mkdir -p "$OUT"
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
TOML=pipelines/pretrain.toml
only() { echo --set masking.token=0 --set masking.whole_word=0 --set masking.entity=0 \
  --set masking.phrase=0 --set "masking.$1=1"; }
for arm in ${ARMS//,/ }; do
  echo "$(date -u +%T) pretraining arm $arm (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  # shellcheck disable=SC2046
  $BIN pretrain $TOML $(only "$arm") --set train.max_steps="$STEPS" --set train.epochs=4 \
    --set train.eval_every=50 --set train.save_final=true --set data.dev_holdout="$HOLDOUT" \
    --set train.output_dir="../$OUT/$arm" --set train.progress=false > "$OUT/$arm-train.json"
  # `zhishi eval` scores OUTPUT/best: point a directory's best at the final model.
  mkdir -p "$OUT/$arm-final"; ln -sfn "../$arm/final" "$OUT/$arm-final/best"
  for ev in ${EVALS//,/ }; do
    # shellcheck disable=SC2046
    $BIN eval $TOML --split dev $(only "$ev") --set data.dev_holdout="$HOLDOUT" \
      --set train.output_dir="../$OUT/$arm-final" > "$OUT/$arm-eval-$ev.json"
    python3 -c 'import json,os,sys
t=json.load(open(sys.argv[1])); e=json.load(open(sys.argv[2]))
print(json.dumps({"arm":sys.argv[3],"eval_masking":sys.argv[4],"mlm_loss":e["mlm_loss"],
 "mlm_accuracy":e["mlm_accuracy"],"entity_accuracy":e.get("entity_accuracy"),
 "masked_tokens":e["masked_tokens"],"entity_spans":e.get("entity_spans"),"steps":t["steps"],
 "train_tokens":t["tokens"],"train_seconds":t["train_seconds"],"tokens_per_s":t["tokens_per_s"],
 "date":os.environ["BENCH_DATE"],"commit":os.environ["BENCH_COMMIT"],"cpu":os.environ["BENCH_CPU"]}))' \
      "$OUT/$arm-train.json" "$OUT/$arm-eval-$ev.json" "$arm" "$ev" >> "$OUT/arms.jsonl"
    tail -1 "$OUT/arms.jsonl" >&2
  done
done
