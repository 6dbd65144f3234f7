#!/usr/bin/env bash
# Throughput and memory of `zhishi run` on the quickstart pipeline.
#
#   benches/run_throughput.sh [OUT.json]
#
# Builds a >= 10 MB corpus of real Chinese sentences (MSRA NER sentences from ../shared,
# repeated to 10.5 MB) and a 4x copy, runs the release binary with 1 and 2 threads on the
# 10 MB input and with 2 threads on the 4x input, and writes one JSON object per run (docs/s,
# chars/s, seconds, peak RSS from /usr/bin/time) to OUT.json (default target/run-throughput.json).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
out=${1:-target/run-throughput.json}
work=target/run-throughput
mkdir -p "$work"
bin=target/release/zhishi
[ -x "$bin" ] || cargo build --release

python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
sents, cur = [], []
import os
root = os.environ["ZHISHI_DATA"]
for f in [f"{root}/ner/msra/msra_sighan2006_train.bmes", f"{root}/ner/msra/msra_sighan2006_test.bmes"]:
    for line in open(f, encoding="utf-8"):
        parts = line.split()
        if not parts:
            if cur:
                sents.append("".join(cur))
                cur = []
            continue
        cur.append(parts[0])
if cur:
    sents.append("".join(cur))
text = ("\n".join(sents) + "\n").encode()
data = b""
while len(data) < 10_500_000:
    data += text
data = data[: data.rfind(b"\n", 0, 10_500_000) + 1]
open(f"{work}/corpus-1x.txt", "wb").write(data)
open(f"{work}/corpus-4x.txt", "wb").write(data * 4)
PY

# Where and when, for the JSON (and `zhishi chart`'s labels).
export BENCH_DATE=$(date -u +%F) BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export BENCH_CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
: > "$out"
run() { # name input threads
  local name=$1 input=$2 threads=$3
  rm -f "$work/$name.jsonl" "$work/$name.jsonl.checkpoint.json"
  /usr/bin/time -f '%M' -o "$work/$name.rss" "$bin" run pipelines/quickstart.toml \
      --input "$input" --output "$work/$name.jsonl" --threads "$threads" --json 2> "$work/$name.log"
  local summary rss bytes
  summary=$(grep '^{' "$work/$name.log" | tail -1)
  rss=$(tail -1 "$work/$name.rss")
  bytes=$(stat -c %s "$input")
  python3 -c "import json,os,sys; s=json.loads(sys.argv[1]); s.update(run=sys.argv[2], threads=int(sys.argv[3]), input_bytes=int(sys.argv[4]), peak_rss_kb=int(sys.argv[5]), mb_per_s=int(sys.argv[4])/s['seconds']/1e6, date=os.environ['BENCH_DATE'], commit=os.environ['BENCH_COMMIT'], cpu=os.environ['BENCH_CPU']); print(json.dumps(s))" \
      "$summary" "$name" "$threads" "$bytes" "$rss" | tee -a "$out"
  rm -f "$work/$name.jsonl" "$work/$name.jsonl.checkpoint.json"   # ~1 GB of JSON per 10 MB of text
}
run 1x-1thread "$work/corpus-1x.txt" 1
run 1x-2threads "$work/corpus-1x.txt" 2
run 4x-2threads "$work/corpus-4x.txt" 2
rm -f "$work/corpus-4x.txt"
