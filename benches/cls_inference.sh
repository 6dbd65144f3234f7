#!/usr/bin/env bash
# Classification inference speed side by side: ../shared/reference/cls_finetune.py with
# `--epochs 0` (transformers' BertForSequenceClassification, evaluation only: the dev and test
# files, batch 32) against `zhishi eval --split dev` + `--split test` of a trained model at f32,
# bf16 and int8, the same examples, threads and max length, run back to back. Accuracy of the
# trained model at each precision comes along (PyTorch's head is untrained here: its accuracy is
# not comparable, only its speed). Prints one JSON object and writes it to
# target/bench-cls-inference-<tag>.json.
#
#   M3E_DIR=/path/to/m3e-small benches/cls_inference.sh TRAIN_OUTPUT_DIR [MAX_EVAL]
# TRAIN_OUTPUT_DIR is a `zhishi train pipelines/chnsenticorp-cls.toml` output (its best/ is
# evaluated), e.g. the one benches/cls_vs_pytorch.sh leaves in target/bench-cls-*/zhishi.
# Env: PY or REF_PYTHON (reference python), BIN (zhishi binary), THREADS (default 2), MAX_LEN (default 128),
# ROUNDS (default 2: rounds interleave PyTorch, f32, bf16, int8; each side's fastest counts,
# every round's wall is in the JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
MODEL_OUT=${1:?usage: cls_inference.sh TRAIN_OUTPUT_DIR [MAX_EVAL]}; N=${2:-0}
PY=${PY:-${REF_PYTHON:?set REF_PYTHON to the reference venv python (see ../shared/reference/setup.sh)}}
BIN=${BIN:-target/release/zhishi}
THREADS=${THREADS:-2}; L=${MAX_LEN:-128}; ROUNDS=${ROUNDS:-2}
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
D=$ZHISHI_DATA/cls/chnsenticorp; TOML=pipelines/chnsenticorp-cls.toml
TAG=chnsenticorp-n$N-l$L-t$THREADS
OUT=target/bench-cls-inference-$TAG; mkdir -p "$OUT"
DV=$D/dev.tsv; TE=$D/test.tsv
if [ "$N" != 0 ]; then
  for s in dev test; do head -n $((N + 1)) $D/$s.tsv > "$OUT/$s.tsv"; done
  DV=$OUT/dev.tsv; TE=$OUT/test.tsv
fi
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
SETS=(--set data.max_len="$L" --set train.threads="$THREADS" --set train.output_dir="$(abs "$MODEL_OUT")"
      --set data.dev="$(abs "$DV")" --set data.test="$(abs "$TE")")
now() { python3 -c 'import time; print(time.perf_counter())'; }
for r in $(seq "$ROUNDS"); do
  $PY ../shared/reference/cls_finetune.py --model "$M3E_DIR" --epochs 0 --threads "$THREADS" \
      --batch-size 32 --max-len "$L" --seed 42 --train "$DV" --dev "$DV" --test "$TE" \
      > "$OUT/pytorch-$r.json" 2>/dev/null
  for p in f32 bf16 int8; do
    t0=$(now)
    RAYON_NUM_THREADS=$THREADS $BIN eval $TOML --split dev --precision $p "${SETS[@]}" > "$OUT/zhishi-dev-$p.json"
    RAYON_NUM_THREADS=$THREADS $BIN eval $TOML --split test --precision $p "${SETS[@]}" > "$OUT/zhishi-test-$p.json"
    t1=$(now)
    echo "$p $r $(python3 -c "print($t1 - $t0)")" >> "$OUT/zhishi-walls.txt"
  done
done
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
python3 - "$OUT" "$TAG" "$ROUNDS" "$THREADS" "$DV" "$TE" <<'PYEOF'
import json, os, sys
out, tag, rounds, threads, dv, te = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
examples = sum(sum(1 for _ in open(f, encoding="utf-8")) - 1 for f in (dv, te))
pt = min((json.load(open(f"{out}/pytorch-{r}.json")) for r in range(1, rounds + 1)), key=lambda j: j["eval_wall_s"])
walls, rounds_s = {}, {}
for line in open(f"{out}/zhishi-walls.txt"):
    p, _, w = line.split()
    walls[p] = min(walls.get(p, 1e9), float(w))
    rounds_s.setdefault(p, []).append(round(float(w), 2))
os.remove(f"{out}/zhishi-walls.txt")
pt_rounds = [json.load(open(f"{out}/pytorch-{r}.json"))["eval_wall_s"] for r in range(1, rounds + 1)]
res = {"bench": f"cls-inference-{tag}", "examples": examples, "threads": threads,
       "pytorch": {"eval_wall_s": pt["eval_wall_s"], "examples_per_s": round(examples / pt["eval_wall_s"], 1), "rounds_s": pt_rounds},
       "zhishi": {}, "date": os.environ["BENCH_DATE"], "commit": os.environ["BENCH_COMMIT"], "cpu": os.environ["BENCH_CPU"],
       "note": "zhishi's wall includes process start, model load, reading and featurizing (two `zhishi eval` runs); PyTorch's is its evaluation loop only"}
for p, w in walls.items():
    test = json.load(open(f"{out}/zhishi-test-{p}.json"))
    res["zhishi"][p] = {"wall_s": round(w, 2), "examples_per_s": round(examples / w, 1),
                        "vs_pytorch": round(pt["eval_wall_s"] / w, 2), "test_accuracy": test["accuracy"],
                        "rounds_s": rounds_s[p]}
s = json.dumps(res)
open(f"{out}.json", "w").write(s + "\n")
print(s)
PYEOF
