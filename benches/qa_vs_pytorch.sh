#!/usr/bin/env bash
# Side-by-side extractive QA fine-tuning on CMRC 2018: ../shared/reference/qa_finetune.py
# (PyTorch, BertForQuestionAnswering) and `zhishi train` + `zhishi eval --split dev` on the same
# encoder directory, training questions (the first N of the trial file), dev questions (the first
# M of the dev file), epochs, batch, learning rate, window length, stride, seed and threads, run
# back to back. Writes target/bench-qa-<tag>.json with both results (and prints it).
#
#   benches/qa_vs_pytorch.sh ENCODER_DIR TAG [MAX_TRAIN] [MAX_DEV] [EPOCHS]
# Defaults: 250 training questions, 300 dev questions, 2 epochs; max_len 256, doc_stride 128,
# batch 8, lr 1e-4. Env: PY (reference python; default $REF_PYTHON), BIN (zhishi binary,
# default target/release/zhishi), THREADS (default 2), LR, MAX_LEN, STRIDE, BATCH, SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
ENC=$(realpath -m "${1:?the encoder directory (Hugging Face layout)}"); TAG=${2:?a tag for the output}
N=${3:-250}; M=${4:-300}; E=${5:-2}
PY=${PY:-${REF_PYTHON:?set REF_PYTHON (or PY) to the reference venv python}}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}; LR=${LR:-1e-4}; MAX_LEN=${MAX_LEN:-256}; STRIDE=${STRIDE:-128}
BATCH=${BATCH:-8}; SEED=${SEED:-42}
D=$ZHISHI_DATA/qa/cmrc2018
OUT=target/bench-qa-$TAG; mkdir -p "$OUT"
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
echo "$(date -u +%T) $TAG: PyTorch (load $(cut -d' ' -f1 /proc/loadavg))" >&2
$PY ../shared/reference/qa_finetune.py --model "$ENC" --train $D/cmrc2018_trial.json \
    --dev $D/cmrc2018_dev.json --max-train "$N" --max-dev "$M" --epochs "$E" \
    --batch-size "$BATCH" --lr "$LR" --max-len "$MAX_LEN" --doc-stride "$STRIDE" --seed "$SEED" \
    --threads "$THREADS" --predictions "$OUT/pytorch-predictions.json" > "$OUT/pytorch.json"
SETS=(--set encoder.model="$ENC" --set data.max_train="$N" --set data.max_eval="$M"
      --set data.max_len="$MAX_LEN" --set data.doc_stride="$STRIDE" --set train.epochs="$E"
      --set train.batch_size="$BATCH" --set train.lr="$LR" --set train.seed="$SEED"
      --set train.threads="$THREADS" --set train.progress=false --set train.output_dir="../$OUT/zhishi")
echo "$(date -u +%T) $TAG: zhishi (load $(cut -d' ' -f1 /proc/loadavg))" >&2
$BIN train pipelines/cmrc2018-qa.toml "${SETS[@]}" > "$OUT/zhishi-train.json"
$BIN eval pipelines/cmrc2018-qa.toml --split dev "${SETS[@]}" > "$OUT/zhishi-dev.json"
python3 - "$OUT" "$TAG" <<'PYEOF'
import json, os, sys
out, tag = sys.argv[1], sys.argv[2]
pt = json.load(open(f"{out}/pytorch.json"))
zt = json.load(open(f"{out}/zhishi-train.json"))
zd = json.load(open(f"{out}/zhishi-dev.json"))
res = {
    "bench": f"qa-{tag}",
    "pytorch": {k: pt[k] for k in ("em", "f1", "mean_pred_chars", "train_questions", "train_windows",
                                   "dev_questions", "train_seconds", "train_tokens_per_s")},
    "zhishi": {"em": zd["em"], "f1": zd["f1"], "precision": zd.get("precision"),
               "recall": zd.get("recall"), "train_seconds": zt.get("train_seconds"),
               "train_tokens_per_s": zt.get("tokens_per_s")},
}
res["f1_diff"] = res["zhishi"]["f1"] - res["pytorch"]["f1"]
res.update(dict(date=os.environ["BENCH_DATE"], commit=os.environ["BENCH_COMMIT"], cpu=os.environ["BENCH_CPU"]))
json.dump(res, open(f"{out}.json", "w"), indent=1)
print(json.dumps(res))
PYEOF
