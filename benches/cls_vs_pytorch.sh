#!/usr/bin/env bash
# Side-by-side classification fine-tuning: ../shared/reference/cls_finetune.py (PyTorch,
# transformers' BertForSequenceClassification) and `zhishi train` + `zhishi eval --split test`
# on the same data, model, epochs, learning rate, batch size, max length, seed and threads, run
# back to back. Writes one JSON object with both results to target/bench-cls-<tag>.json (and
# prints it).
#
#   M3E_DIR=/path/to/m3e-small benches/cls_vs_pytorch.sh chnsenticorp [MAX_TRAIN] [EPOCHS]
#   M3E_DIR=/path/to/m3e-small benches/cls_vs_pytorch.sh nlpcc-pairs  [MAX_TRAIN] [EPOCHS]
# Env: PY (reference python), BIN (zhishi binary), THREADS (default 2), MAX_LEN (default: 256
# for chnsenticorp, 96 for the pairs), MAX_EVAL (dev/test examples, 0 = all),
# KNOWLEDGE=plain|kbert|ernie (zhishi only; the reference has none), BATCHING (zhishi's
# train.batching; default: the TOML's).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
NAME=${1:-chnsenticorp}; N=${2:-0}; E=${3:-2}
PY=${PY:-${REF_PYTHON:?set REF_PYTHON to the reference venv python (see ../shared/reference/setup.sh)}}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}; KNOWLEDGE=${KNOWLEDGE:-plain}; BATCHING=${BATCHING:-}; MAX_EVAL=${MAX_EVAL:-0}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
case "$NAME" in
  chnsenticorp) D=$ZHISHI_DATA/cls/chnsenticorp; TOML=pipelines/chnsenticorp-cls.toml; L=${MAX_LEN:-256} ;;
  nlpcc-pairs)  D=target/corpora/nlpcc-pairs; TOML=pipelines/nlpcc-pairs-cls.toml; L=${MAX_LEN:-96}
                [ -f $D/train.tsv ] || python3 corpora/nlpcc_pairs.py >/dev/null ;;
  *) echo "unknown data set $NAME (chnsenticorp|nlpcc-pairs)" >&2; exit 2 ;;
esac
TAG=$NAME-n$N-e$E-l$L-$KNOWLEDGE-t$THREADS${BATCHING:+-$BATCHING}
OUT=target/bench-cls-$TAG; mkdir -p "$OUT"
TR=$D/train.tsv; DV=$D/dev.tsv; TE=$D/test.tsv
if [ "$MAX_EVAL" != 0 ]; then   # the same first MAX_EVAL examples on both sides
  for s in dev test; do head -n $((MAX_EVAL + 1)) $D/$s.tsv > "$OUT/$s.tsv"; done
  DV=$OUT/dev.tsv; TE=$OUT/test.tsv
fi
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
$PY ../shared/reference/cls_finetune.py --model "$M3E_DIR" --epochs "$E" --max-train "$N" \
    --threads "$THREADS" --batch-size 32 --lr 5e-5 --max-len "$L" --seed 42 \
    --train $TR --dev $DV --test $TE > "$OUT/pytorch.json"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
SETS=(--set train.epochs="$E" --set data.max_train="$N" --set data.max_len="$L" --set train.threads="$THREADS"
      --set train.output_dir="$(abs "$OUT")/zhishi" --set train.progress=false --set knowledge.mode="$KNOWLEDGE"
      --set data.dev="$(abs "$DV")" --set data.test="$(abs "$TE")")
[ -n "$BATCHING" ] && SETS+=(--set train.batching="$BATCHING")
$BIN train $TOML "${SETS[@]}" > "$OUT/zhishi-train.json"
$BIN eval $TOML --split test "${SETS[@]}" > "$OUT/zhishi-test.json"
$BIN eval $TOML --split test --precision int8 "${SETS[@]}" > "$OUT/zhishi-test-int8.json"
python3 - "$OUT" "$TAG" <<'PYEOF'
import json, os, sys
out, tag = sys.argv[1], sys.argv[2]
pt = json.load(open(f"{out}/pytorch.json"))
zt = json.load(open(f"{out}/zhishi-train.json"))
ze = json.load(open(f"{out}/zhishi-test.json"))
zq = json.load(open(f"{out}/zhishi-test-int8.json"))
res = {
    "bench": tag,
    "pytorch": {"dev_accuracy": pt["dev"]["accuracy"], "test_accuracy": pt["test"]["accuracy"],
                "test_macro_f1": pt["test"]["macro_f1"], "train_wall_s": pt["train_wall_s"],
                "train_tokens": pt["train_tokens"], "train_tokens_per_s": pt["train_tokens_per_s"]},
    "zhishi": {"dev_accuracy": zt["accuracy"], "test_accuracy": ze["accuracy"],
               "test_macro_f1": ze["macro_f1"], "test_accuracy_int8": zq["accuracy"],
               "train_wall_s": zt["train_seconds"], "train_tokens": zt["tokens"],
               "train_tokens_per_s": zt["tokens_per_s"],
               "train_padded_tokens_per_s": zt["padded_tokens_per_s"]},
}
res["ratio_tokens_per_s"] = res["zhishi"]["train_tokens_per_s"] / res["pytorch"]["train_tokens_per_s"]
res["test_accuracy_diff"] = res["zhishi"]["test_accuracy"] - res["pytorch"]["test_accuracy"]
res["int8_accuracy_diff"] = res["zhishi"]["test_accuracy_int8"] - res["zhishi"]["test_accuracy"]
res.update(dict(date=os.environ["BENCH_DATE"], commit=os.environ["BENCH_COMMIT"], cpu=os.environ["BENCH_CPU"]))
json.dump(res, open(f"{out}.json", "w"), indent=1)
print(json.dumps(res))
PYEOF
