#!/usr/bin/env bash
# int8 against f32 on real sentences: mean-pooled sentence vectors of the MSRA NER test
# sentences from `zhishi encode --pooling mean`, once with `--precision f32` and once with
# `--precision int8` (and `bf16` for scale), compared by cosine.
#
#   M3E_DIR=... benches/int8_cosine.sh [OUT.json] [MAX_SENTENCES]
#
# Writes one JSON object (sentences, tokens, mean/min cosine, max abs difference per precision,
# the CPU and the int8 kernel) to OUT.json (default target/int8-cosine.json). Every sentence is
# encoded on its own (batch 1, no padding), so the numbers do not depend on batching.
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
: "${M3E_DIR:?set M3E_DIR to the m3e-small directory}"
out=${1:-target/int8-cosine.json}
max=${2:-100000}
data=${MSRA_TEST:-$ZHISHI_DATA/ner/msra/msra_sighan2006_test.bmes}
work=target/int8-cosine
mkdir -p "$work"
bin=${BIN:-target/release/zhishi}
[ -x "$bin" ] || cargo build --release

python3 - "$data" "$work/sentences.jsonl" "$max" <<'PY'
import json, sys
src, dst, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
sentences, chars = [], []
for line in open(src, encoding="utf-8"):
    parts = line.split()
    if parts:
        chars.append(parts[0])
    elif chars:
        sentences.append("".join(chars))
        chars = []
if chars:
    sentences.append("".join(chars))
with open(dst, "w", encoding="utf-8") as f:
    for s in sentences[:limit]:
        f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
PY

for p in f32 bf16 int8; do
  start=$(date +%s%N)
  "$bin" encode --model "$M3E_DIR" --pooling mean --precision "$p" \
    < "$work/sentences.jsonl" > "$work/$p.jsonl"
  echo "$p: $(( ($(date +%s%N) - start) / 1000000 )) ms" >&2
done

python3 - "$work" "$out" "$(lscpu | sed -n 's/^Model name: *//p')" \
  "$("$bin" bench cpu 2>/dev/null || echo null)" <<'PY'
import json, math, sys
work, out, cpu, features = sys.argv[1:5]
def vectors(p):
    return [json.loads(l)["embedding"] for l in open(f"{work}/{p}.jsonl", encoding="utf-8")]
def cos(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
texts = [json.loads(l)["text"] for l in open(f"{work}/sentences.jsonl", encoding="utf-8")]
ref = vectors("f32")
result = {"bench": "int8_cosine", "sentences": len(ref),
          "chars": sum(len(t) for t in texts), "cpu": cpu,
          "cpu_features": json.loads(features) if features != "null" else None}
for p in ["bf16", "int8"]:
    got = vectors(p)
    cs = [cos(a, b) for a, b in zip(got, ref)]
    result[p] = {
        "mean_cosine": sum(cs) / len(cs), "min_cosine": min(cs),
        "share_below_0_995": sum(c < 0.995 for c in cs) / len(cs),
        "max_abs_diff": max(max(abs(x - y) for x, y in zip(a, b)) for a, b in zip(got, ref)),
    }
print(json.dumps(result))
open(out, "w").write(json.dumps(result) + "\n")
PY
