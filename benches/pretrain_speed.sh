#!/usr/bin/env bash
# Pretraining speed, zhishi against PyTorch, side by side: `zhishi pretrain` and
# transformers' BertForMaskedLM (benches/mlm_speed.py) on the same corpus, batch, sequence
# length, steps and threads, in interleaved rounds. BERT token masking on both sides (the
# entity/whole-word strategies add linking, which the reference has no counterpart for).
#
#   M3E_DIR=... REF_PYTHON=... benches/pretrain_speed.sh [STEPS] [ROUNDS] [THREADS...]
#
# Needs a release build (ZHISHI=path, default target/release/zhishi) and the corpus of
# corpora/medical_pretrain.sh. Writes benches/pretrain-speed.json (beside, not in, results/: no chart shape): every round's
# tokens/s per side and thread count, the medians, and zhishi / PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-20}
rounds=${2:-2}
shift $(( $# > 2 ? 2 : $# ))
threads=("${@:-1 2}")
threads=(${threads[@]})
zhishi=${ZHISHI:-target/release/zhishi}
corpus=target/corpora/medical-pretrain.txt
[ -f "$corpus" ] || bash corpora/medical_pretrain.sh
: "${M3E_DIR:?set M3E_DIR to an m3e-small directory}"
: "${REF_PYTHON:?set REF_PYTHON to the reference venv python (../shared/reference/setup.sh)}"
commit=$(git rev-parse --short HEAD)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
rows=()
for round in $(seq "$rounds"); do
    for t in "${threads[@]}"; do
        z=$("$zhishi" pretrain pipelines/pretrain.toml \
            --set train.max_steps="$steps" --set train.threads="$t" --set train.batch_size=16 \
            --set train.grad_accum=1 --set train.eval_every=0 --set train.progress=false \
            --set masking.token=1.0 --set masking.whole_word=0.0 --set masking.entity=0.0 \
            --set train.output_dir="\"$out/z-$round-$t\"" 2>/dev/null)
        zt=$(printf '%s' "$z" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
        p=$("$REF_PYTHON" benches/mlm_speed.py "$M3E_DIR" "$corpus" --steps "$steps" --batch 16 \
            --max-len 128 --threads "$t")
        pt=$(printf '%s' "$p" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_per_s"])')
        echo "round $round threads $t: zhishi $zt tok/s, pytorch $pt tok/s" >&2
        rows+=("{\"round\": $round, \"threads\": $t, \"zhishi_tokens_per_s\": $zt, \"pytorch_tokens_per_s\": $pt}")
    done
done
printf '%s\n' "${rows[@]}" | python3 -c '
import json, statistics, subprocess, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
summary = {}
for t in sorted({r["threads"] for r in rows}):
    z = statistics.median(r["zhishi_tokens_per_s"] for r in rows if r["threads"] == t)
    p = statistics.median(r["pytorch_tokens_per_s"] for r in rows if r["threads"] == t)
    summary[str(t)] = {"zhishi_tokens_per_s": z, "pytorch_tokens_per_s": p, "speedup_vs_pytorch": z / p}
commit = sys.argv[2]
json.dump({"benchmark": "pretrain_speed", "model": "m3e-small", "batch": 16, "max_len": 128,
           "steps": int(sys.argv[1]), "masking": "token", "commit": commit, "cpu": cpu,
           "flags": [f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni")],
           "rounds": rows, "median": summary}, open("benches/pretrain-speed.json", "w"), indent=2)
print(json.dumps(summary, indent=2))
' "$steps" "$commit"
