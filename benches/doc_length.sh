#!/usr/bin/env bash
# Time against document length: `zhishi run` (quickstart pipeline: segment, link, facts) and
# `zhishi link --json --knowledge 2` on ONE document of 10 KB, 20 KB, ... 10 MB with dense
# mentions, to show the cost is linear in document length and mention count.
#
#   benches/doc_length.sh [OUT.json]
#
# Two documents per size: `sample` (corpora/sample.txt's sentences one after another, a
# mention every ~10 chars) and `repeat` (哈姆雷特 repeated with no punctuation: one mention
# every 4 chars, the worst case reported in the reliability issue). Writes one JSON object
# with seconds, peak RSS, mention counts and the time ratio per doubling (2.0 = linear) to
# OUT.json (default target/doc-length.json).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/doc-length.json}
work=target/doc-length
mkdir -p "$work"
bin=target/release/zhishi
[ -x "$bin" ] || cargo build --release
rm -rf "$work/kg"
"$bin" kg import --db "$work/kg" kg/demo.tsv >/dev/null 2>&1

python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
sample = "".join(l.strip() for l in open("corpora/sample.txt", encoding="utf-8") if l.strip())
for kind, unit in [("sample", sample), ("repeat", "哈姆雷特")]:
    size = 10_000
    while size <= 10_240_000:
        reps = size // len(unit.encode()) + 1
        text = (unit * reps).encode()[:size].decode("utf-8", "ignore")
        open(f"{work}/{kind}-{size}.txt", "w", encoding="utf-8").write(text + "\n")
        size *= 2
PY

lscpu | sed -n 's/^Model name: *//p' > "$work/cpu.txt"
results=()
for kind in sample repeat; do
  size=10000
  while [ $size -le 10240000 ]; do
    f="$work/$kind-$size.txt"
    for tool in run link; do
      if [ $tool = run ]; then
        cmd=("$bin" run pipelines/quickstart.toml --input "$f" --output "$work/out.jsonl" --max-record-bytes 20000000 --threads 1)
      else
        cmd=("$bin" link --db "$work/kg" --json --knowledge 2 --max-record-bytes 20000000 "$f")
      fi
      start=$(date +%s.%N)
      /usr/bin/time -f "%M" -o "$work/rss.txt" "${cmd[@]}" > "$work/stdout.txt" 2>/dev/null
      end=$(date +%s.%N)
      if [ $tool = run ]; then
        mentions=$(python3 -c "import json,sys; print(len(json.loads(open('$work/out.jsonl').readline())['mentions']))")
      else
        mentions=$(python3 -c "import json,sys; print(len(json.loads(open('$work/stdout.txt').readline())['mentions']))")
      fi
      results+=("{\"doc\":\"$kind\",\"tool\":\"$tool\",\"bytes\":$size,\"seconds\":$(printf '%.4f' "$(echo "$end - $start" | bc)"),\"peak_rss_kb\":$(cat "$work/rss.txt"),\"mentions\":$mentions}")
      echo "${results[-1]}" >&2
    done
    size=$((size * 2))
  done
done
printf '%s\n' "${results[@]}" | python3 -c "
import json, sys, subprocess
rows = [json.loads(l) for l in sys.stdin]
for r in rows:
    prev = [p for p in rows if p['doc'] == r['doc'] and p['tool'] == r['tool'] and p['bytes'] * 2 == r['bytes']]
    r['ratio_per_doubling'] = round(r['seconds'] / prev[0]['seconds'], 2) if prev and prev[0]['seconds'] > 0 else None
commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
cpu = open('$work/cpu.txt').read().strip()
date = subprocess.run(['date', '-u', '+%F'], capture_output=True, text=True).stdout.strip()
json.dump({'benchmark': 'doc_length', 'date': date, 'commit': commit, 'cpu': cpu, 'threads': 1, 'rows': rows}, open('$out', 'w'), indent=1)
print('wrote $out')
"
