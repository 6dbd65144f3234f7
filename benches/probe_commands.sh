#!/usr/bin/env bash
# Probes every zhishi command the way a careful but imperfect user would: outputs that are
# inputs by another name, missing or read-only directories, empty and invalid inputs, absurd
# numbers, closed pipes, kill -9 / Ctrl-C mid-write and reruns, concurrent runs.
#
#   bash benches/probe_commands.sh                  # prints a Markdown table and the counts
#   ZHISHI=target/release/zhishi PROBE_ROOT=/tmp/p PROBE_TABLE=probes.md bash benches/probe_commands.sh
#
# Environment:
#   ZHISHI         the binary (default target/release/zhishi of the checkout)
#   PROBE_ROOT     where every probe gets a fresh directory (default: mktemp -d); fixtures are
#                  cached in PROBE_ROOT/fixtures
#   PROBE_TABLE    also write the table and the counts to this file
#   PROBE_TIMEOUT  seconds per probe (default 60)
#   PROBE_ONLY     run only the probes whose id matches this extended regex
#   ZHISHI_REPO    the checkout holding kg/demo.tsv, corpora/sample.txt, pipelines/quickstart.toml
#                  (default: the parent of this script's directory)
#   PYTHON         a Python 3 with numpy + safetensors for the tiny model (installed with pip if
#                  missing)
#
# A probe FAILs when the process panics, exits 0 where it should refuse, changes or removes a
# file that existed before it ran (unless the probe says the file may change), leaves a
# half-written output that looks complete, runs past the timeout, is killed by a signal of its
# own making, or refuses with a message naming neither the file nor the flag at fault.
set -u
set -o pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZHISHI_REPO=${ZHISHI_REPO:-$(cd "$SCRIPT_DIR/.." && pwd)}
ZHISHI=${ZHISHI:-$ZHISHI_REPO/target/release/zhishi}
PROBE_ROOT=${PROBE_ROOT:-$(mktemp -d)}
PROBE_TIMEOUT=${PROBE_TIMEOUT:-60}
PROBE_ONLY=${PROBE_ONLY:-}
PYTHON=${PYTHON:-python3}

[ -x "$ZHISHI" ] || { echo "probe_commands.sh: ZHISHI=$ZHISHI is not an executable" >&2; exit 2; }
mkdir -p "$PROBE_ROOT"
PROBE_ROOT=$(cd "$PROBE_ROOT" && pwd)
ZHISHI=$(cd "$(dirname "$ZHISHI")" && pwd)/$(basename "$ZHISHI")
FIX=$PROBE_ROOT/fixtures
BIN=$PROBE_ROOT/bin
mkdir -p "$BIN" "$PROBE_ROOT/probes"
ln -sfn "$ZHISHI" "$BIN/zhishi"           # probes call it as plain `zhishi`
# The read-only probes run as an unprivileged user when we are root (root ignores chmod).
chmod 755 "$PROBE_ROOT" "$PROBE_ROOT/probes" "$BIN" 2>/dev/null
export FIX BIN PROBE_ROOT
export PATH="$BIN:$PATH"

# ---------------------------------------------------------------------------------------------
# Helpers available inside SETUP, the probe command and CHECK (exported to their shells).

fx() { for name in "$@"; do cp -a "$FIX/$name/." . ; done; }           # copy a fixture here
fail() { echo "$*"; exit 1; }                                          # CHECK: fail with a note
lines() { if [ -e "$1" ]; then wc -l < "$1" | tr -d ' '; else echo 0; fi; }
as_nobody() {                                                          # run without root's rights
    if [ "$(id -u)" = 0 ]; then setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; else "$@"; fi
}
# Starts `zhishi serve ARGS` on a free loopback port in the background; sets PORT and SPID.
serve_bg() {
    zhishi serve "$@" --addr 127.0.0.1:0 2> serve.err &
    SPID=$!
    for _ in $(seq 1 100); do
        PORT=$(grep -o 'http://127.0.0.1:[0-9]*' serve.err | head -1 | sed 's/.*://')
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || { cat serve.err >&2; return 1; }
        sleep 0.1
    done
    cat serve.err >&2; return 1
}
serve_stop() {   # SIGTERM, then the exit status of the server (124 if it did not stop in 15 s)
    kill -TERM "$SPID" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPID" 2>/dev/null; then kill -9 "$SPID"; wait "$SPID" 2>/dev/null; return 124; fi
    wait "$SPID"; return $?
}
http() { curl -s -o body -w '%{http_code}' --max-time 20 "$@"; }      # prints the status code
# Waits until FILE exists and is non-empty (at most 20 s).
wait_file() { for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
# Checks that a JSONL run output holds each of the ids 1..N exactly once.
ids_once() {
    "$PYTHON_BIN" - "$1" "$2" <<'EOF'
import re, sys
path, n = sys.argv[1], int(sys.argv[2])
ids = []
for i, line in enumerate(open(path, encoding="utf-8"), 1):
    # documents start with their id; a torn line lacks the closing brace
    m = re.match(r'\{"id":"?([^",]*)"?,', line)
    if not m or not line.rstrip("\n").endswith("}"):
        print(f"{path}:{i}: not a complete JSON document: {line[:60]!r}"); sys.exit(1)
    ids.append(m.group(1))
seen = set(ids)
missing = [i for i in range(1, n + 1) if str(i) not in seen]
dups = len(ids) - len(set(ids))
if missing or dups or len(ids) != n:
    print(f"{path}: {len(ids)} documents, {len(missing)} ids missing (first {missing[:3]}), {dups} duplicated; expected {n}")
    sys.exit(1)
EOF
}
PYTHON_BIN=$(command -v "$PYTHON" || command -v python3 || true)
export PYTHON_BIN
export -f fx fail lines as_nobody serve_bg serve_stop http wait_file ids_once

# ---------------------------------------------------------------------------------------------
# Fixtures, built once under $FIX.

build_fixtures() {
    [ -e "$FIX/.done" ] && return 0
    echo "building fixtures in $FIX ..." >&2
    rm -rf "$FIX"; mkdir -p "$FIX"
    local demo=$ZHISHI_REPO/kg/demo.tsv sample=$ZHISHI_REPO/corpora/sample.txt
    local qs=$ZHISHI_REPO/pipelines/quickstart.toml
    for f in "$demo" "$sample" "$qs"; do
        [ -f "$f" ] || { echo "missing $f (set ZHISHI_REPO)" >&2; return 1; }
    done
    mkdir -p "$FIX/kg" "$FIX/corpus" "$FIX/quickstart" "$FIX/store" "$FIX/storepipe" "$FIX/big"
    cp "$demo" "$FIX/kg/demo.tsv"
    cp "$sample" "$FIX/corpus/sample.txt"
    # quickstart: the shipped pipeline with its KG beside it
    cp "$demo" "$FIX/quickstart/demo.tsv"
    sed 's#"\.\./kg/demo\.tsv"#"demo.tsv"#' "$qs" > "$FIX/quickstart/pipeline.toml"
    cp "$sample" "$FIX/quickstart/in.txt"
    # a store imported from demo.tsv
    # (opened once more: sled rewrites its file on the first open after an import)
    (cd "$FIX/store" && zhishi kg import --db store "$demo" > /dev/null 2>&1 &&
        zhishi kg stats --db store > /dev/null 2>&1) || return 1
    # a pipeline over that store
    cp -a "$FIX/store/." "$FIX/storepipe/"
    cp "$sample" "$FIX/storepipe/in.txt"
    sed 's#^triples = .*#store = "store"#' "$qs" > "$FIX/storepipe/pipeline.toml"
    # a corpus big enough to interrupt (~100k lines)
    for _ in $(seq 1 2700); do cat "$sample"; done > "$FIX/big/big.txt"
    cp "$FIX/quickstart/pipeline.toml" "$FIX/quickstart/demo.tsv" "$FIX/big/"
    # a tiny random BERT (and the NER workspace around it)
    "$PYTHON_BIN" -c 'import numpy, safetensors' 2>/dev/null ||
        "$PYTHON_BIN" -m pip install -q safetensors numpy >&2 || return 1
    mkdir -p "$FIX/model" "$FIX/ner"
    "$PYTHON_BIN" - "$FIX/model" <<'EOF' || return 1
import json, os, sys
import numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
chars = "张三李四住在北京上海和去了工作。王五杭州患者头痛发热咳嗽天，"
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(chars))
V, H, I, L, P = len(vocab), 16, 32, 2, 32
rng = np.random.default_rng(11)
r = lambda *s: (0.3 * rng.standard_normal(s)).astype(np.float32)
one = lambda n: np.ones(n, np.float32)
t = {"embeddings.word_embeddings.weight": r(V, H), "embeddings.position_embeddings.weight": r(P, H),
     "embeddings.token_type_embeddings.weight": r(2, H),
     "embeddings.LayerNorm.weight": one(H), "embeddings.LayerNorm.bias": r(H),
     "pooler.dense.weight": r(H, H), "pooler.dense.bias": r(H)}
for l in range(L):
    p = f"encoder.layer.{l}."
    for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
        t[p + n + ".weight"], t[p + n + ".bias"] = r(H, H), r(H)
    t[p + "attention.output.LayerNorm.weight"], t[p + "attention.output.LayerNorm.bias"] = one(H), r(H)
    t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = r(I, H), r(I)
    t[p + "output.dense.weight"], t[p + "output.dense.bias"] = r(H, I), r(H)
    t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"] = one(H), r(H)
save_file(t, os.path.join(d, "model.safetensors"))
json.dump({"vocab_size": V, "hidden_size": H, "num_hidden_layers": L, "num_attention_heads": 2,
           "intermediate_size": I, "max_position_embeddings": P, "type_vocab_size": 2},
          open(os.path.join(d, "config.json"), "w"))
open(os.path.join(d, "vocab.txt"), "w").write("\n".join(vocab) + "\n")
TRAIN = [("张三住在北京", "B-PER E-PER O O B-LOC E-LOC"), ("李四去了上海", "B-PER E-PER O O B-LOC E-LOC"),
         ("王五在杭州工作。", "B-PER E-PER O B-LOC E-LOC O O O"),
         ("张三和李四在上海", "B-PER E-PER O B-PER E-PER O B-LOC E-LOC"),
         ("李四在北京工作。", "B-PER E-PER O B-LOC E-LOC O O O"),
         ("王五去了北京和上海", "B-PER E-PER O O B-LOC E-LOC O B-LOC E-LOC")]
def bmes(path, sents):
    open(path, "w").write("".join("".join(f"{c} {g}\n" for c, g in zip(a, b.split())) + "\n" for a, b in sents))
ner = os.path.join(d, "..", "ner")
bmes(os.path.join(ner, "train.bmes"), TRAIN)
bmes(os.path.join(ner, "dev.bmes"), TRAIN[:3])
EOF
    cp -a "$FIX/model" "$FIX/ner/model"
    (
        cd "$FIX/ner" || exit 1
        printf '头痛\t类别\t症状\n发热\t类别\t症状\n北京\t类别\t城市\n上海\t类别\t城市\n' > kg.tsv
        for _ in $(seq 1 10); do printf '患者头痛发热。\n患者三天咳嗽。\n头痛，发热。\n患者咳嗽三天，头痛。\n'; done > corpus.txt
        printf '张三住在北京\n王五去了上海和杭州工作。\n' > c.txt
        cat > ner.toml <<'EOF'
[task]
kind = "ner"

[encoder]
model = "model"
dropout = 0.0

[data]
format = "char_per_line"
train = "train.bmes"
dev = "dev.bmes"
test = "dev.bmes"
max_len = 32

[head]
crf = true

[train]
output_dir = "out"
epochs = 3
batch_size = 3
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
EOF
        { cat ner.toml; printf '\n[knowledge]\nkg = "kg.tsv"\n'; } > cmp.toml
        cat > pretrain.toml <<'EOF'
[task]
kind = "pretrain"
[encoder]
model = "model"
[knowledge]
kg = "kg.tsv"
[data]
corpus = "corpus.txt"
max_len = 12
dev_holdout = 4
[masking]
entity = 1.0
whole_word = 1.0
token = 1.0
[train]
output_dir = "pt"
epochs = 1
batch_size = 4
lr = 1e-3
progress = false
EOF
        cat > distill.toml <<'EOF'
[task]
kind = "distill"
[teacher]
model = "out/best"
[student]
layers = [1]
dropout = 0.0
[distill]
temperature = 2.0
alpha = 0.5
[data]
format = "char_per_line"
train = "train.bmes"
dev = "dev.bmes"
test = "dev.bmes"
[train]
output_dir = "student"
epochs = 2
batch_size = 3
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
EOF
        printf '[pipeline]\nname = "tner"\nstages = ["segment", "link", "facts", "ner"]\n\n[kg]\ntriples = ["kg.tsv"]\n\n[link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 2\n\n[ner]\nmodel = "out/best"\n' > ner-run.toml
        zhishi train ner.toml > /dev/null 2>&1 && zhishi pretrain pretrain.toml > /dev/null 2>&1
    ) || { echo "training the tiny NER / MLM models failed" >&2; return 1; }
    # a tiny OpenKE data set and a tiny TSV link-prediction data set
    mkdir -p "$FIX/openke" "$FIX/lp"
    (
        cd "$FIX/openke" || exit 1
        printf '4\na\t0\nb\t1\nc\t2\nd\t3\n' > entity2id.txt
        printf '2\nr\t0\ns\t1\n' > relation2id.txt
        printf '5\n0 1 0\n1 2 0\n2 3 0\n0 2 1\n3 0 1\n' > train2id.txt
        printf '1\n1 3 1\n' > valid2id.txt
        printf '1\n2 0 1\n' > test2id.txt
        cd "$FIX/lp" || exit 1
        for i in $(seq 0 29); do printf 'e%d\tr%d\te%d\n' $i $((i % 3)) $(((i * 7 + 1) % 30)); done > train.txt
        printf 'e1\tr1\te8\ne2\tr2\te15\n' > valid.txt
        printf 'e3\tr0\te22\ne4\tr1\te29\n' > test.txt
    ) || return 1
    # a benchmark result `zhishi chart` draws
    mkdir -p "$FIX/chart"
    local res=$ZHISHI_REPO/benches/results/transe-vs-pykeen-fb15k237.jsonl
    if [ -f "$res" ]; then cp "$res" "$FIX/chart/bench.jsonl"; else
        printf '%s\n' '{"impl": "pykeen", "dataset": "FB15K237", "mrr": 0.222, "hits@10": 0.369, "train_wall_s": 81.5}' \
            '{"impl": "zhishi-same", "dataset": "FB15K237", "mrr": 0.223, "hits@10": 0.37, "train_wall_s": 20.1}' > "$FIX/chart/bench.jsonl"
    fi
    chmod -R a+rX "$FIX"
    touch "$FIX/.done"
}

# ---------------------------------------------------------------------------------------------
# probe ID EXPECTATION KIND COMMAND
#   KIND: ok            exit status 0
#         refuse:REGEX  a non-zero exit whose stderr matches REGEX (the file or flag at fault)
#         either:REGEX  exit 0, or a refusal as above
#         any           no requirement on the status (still: no panic, hang, crash or data loss)
#   Read from the environment and reset after each probe:
#     SETUP       bash run first in the probe's fresh directory (no checks)
#     CHECK       bash run afterwards in that directory; `fail NOTE` makes the probe FAIL.
#                 RC, OUT and ERR (the status and the files holding stdout and stderr) are set.
#     MAY_CHANGE  space-separated globs of files that existed before and may change or go
#                 (every other file that existed before the command must be left byte for byte)
#     MEM_MB      address-space limit for the command (ulimit -v), to catch unbounded memory
#     SHOW        the command as shown in the table (default: COMMAND)
IDS=() CMDS=() EXPECTS=() OUTCOMES=() NOTES=()

SLED_INTERNAL='*gen-[0-9]*/db *gen-[0-9]*/snap.* *gen-[0-9]*/conf'
# "N triples" of a store after reading every record, or why it cannot be read
store_count() {
    local o; o=$(zhishi kg stats --db "$1" --verify 2>&1) || { echo "unreadable ($(echo "$o" | head -1))"; return; }
    echo "$o" | grep -o '"triples":[0-9]*' | sed 's/.*:/triples /'
}
snapshot() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }

record() {
    local show=$2
    show=$(printf '%s' "$show" | tr '\n' ' ' | tr -s ' ')
    [ ${#show} -gt 90 ] && show="${show:0:87}..."
    local note=${5//$'\r'/}
    note=$(printf '%s' "$note" | tr '\n\t' '  ' | tr -s ' ')
    [ ${#note} -gt 160 ] && note="${note:0:157}..."
    IDS+=("$1") CMDS+=("$show") EXPECTS+=("$3") OUTCOMES+=("$4") NOTES+=("$note")
    printf '%-28s %-4s %s\n' "$1" "$4" "$note" >&2
}

probe() {
    local id=$1 expect=$2 kind=$3 cmd=$4
    if [ -n "$PROBE_ONLY" ] && ! [[ $id =~ $PROBE_ONLY ]]; then
        SETUP='' CHECK='' MAY_CHANGE='' MEM_MB='' SHOW=''; return 0
    fi
    local setup=${SETUP:-} check=${CHECK:-} may=${MAY_CHANGE:-} mem=${MEM_MB:-} show=${SHOW:-$4}
    SETUP='' CHECK='' MAY_CHANGE='' MEM_MB='' SHOW=''
    local dir=$PROBE_ROOT/probes/$id
    rm -rf "$dir"; mkdir -p "$dir/work"; chmod 777 "$dir/work"
    local w=$dir/work
    if [ -n "$setup" ] && ! (cd "$w" && timeout "$PROBE_TIMEOUT" bash -c "$setup") > "$dir/setup.log" 2>&1; then
        record "$id" "$show" "$expect" FAIL "probe setup failed: $(head -c 200 "$dir/setup.log")"; return
    fi
    snapshot "$w" > "$dir/before"
    # KG stores: sled may rewrite its own files when a store is read, so instead of their bytes
    # the store's verified triple count must survive
    local stores; stores=$(awk '$2 ~ /\/STORE\.json$/ {print $2}' "$dir/before" | sed 's#^\./##; s#/STORE\.json$##')
    for s in $stores; do (cd "$w" && store_count "$s") > "$dir/store.$(echo "$s" | tr / _)"; done
    local t0=$SECONDS
    (
        cd "$w" || exit 99
        [ -n "$mem" ] && ulimit -v $((mem * 1024))
        exec timeout -k 5 "$PROBE_TIMEOUT" bash -c "$cmd"
    ) > "$dir/stdout" 2> "$dir/stderr" < /dev/null
    local rc=$? secs=$((SECONDS - t0))
    local first; first=$(grep -v '^\s*$' "$dir/stderr" | head -1)
    local outcome=PASS note=""
    # 1. hangs, panics, crashes
    if [ $rc = 124 ] || [ $rc = 137 ] && [ $secs -ge "$PROBE_TIMEOUT" ]; then
        outcome=FAIL note="hang: still running after ${PROBE_TIMEOUT}s (killed)"
    elif [ $rc = 124 ]; then
        outcome=FAIL note="kept running: a timeout inside the probe killed it (exit 124): $first"
    elif grep -q 'panicked' "$dir/stderr" "$dir/stdout" 2>/dev/null; then
        outcome=FAIL note="panic: $(grep -h -m1 'panicked' "$dir/stderr" "$dir/stdout")"
    elif grep -qE 'memory allocation of [0-9]+ bytes failed|out of memory' "$dir/stderr"; then
        outcome=FAIL note="unbounded memory (limit ${mem:-none} MB): $(grep -m1 -E 'memory allocation|out of memory' "$dir/stderr")"
    elif [ $rc = 153 ]; then
        outcome=FAIL note="unbounded output: passed the probe's file-size limit (SIGXFSZ): $first"
    elif [ $rc = 134 ] || [ $rc = 136 ] || [ $rc = 139 ]; then
        outcome=FAIL note="crashed (exit $rc, signal $((rc - 128))): $first"
    fi
    # 2. the exit status against the expectation
    if [ $outcome = PASS ]; then
        case $kind in
            ok) [ $rc = 0 ] || { outcome=FAIL note="exit $rc, expected 0: $first"; } ;;
            refuse:* | either:*)
                local re=${kind#*:}
                if [ $rc = 0 ]; then
                    [ "${kind%%:*}" = refuse ] && { outcome=FAIL note="exit 0, expected a refusal naming /$re/"; }
                elif ! grep -qiE -- "$re" "$dir/stderr"; then
                    outcome=FAIL note="unclear error (exit $rc; names neither /$re/): ${first:-<no stderr>}"
                fi ;;
            any) ;;
        esac
    fi
    # 3. files that existed before: unchanged unless the probe allows it (data loss is reported
    #    before any other failure but a hang)
    if [ "${note#hang}" = "$note" ]; then
        snapshot "$w" > "$dir/after"
        local lost=""
        while read -r sum path; do
            local p=${path#./} skip=0 g
            for g in $may $SLED_INTERNAL; do [[ $p == $g ]] && skip=1; done
            [ $skip = 1 ] && continue
            local now; now=$(grep -F "  $path" "$dir/after" | awk -v p="$path" '$2 == p {print $1}')
            if [ -z "$now" ]; then lost+="$p deleted; "
            elif [ "$now" != "$sum" ]; then lost+="$p changed; "; fi
        done < "$dir/before"
        for s in $stores; do
            local skip=0 g
            for g in $may; do [[ $s/STORE.json == $g ]] && skip=1; done
            [ $skip = 1 ] && continue
            local was now; was=$(cat "$dir/store.$(echo "$s" | tr / _)"); now=$(cd "$w" && store_count "$s")
            [ "$was" = "$now" ] || lost+="store $s: $was before, $now after; "
        done
        [ -n "$lost" ] && { outcome=FAIL note="data loss: $lost${note:+(also: $note)}"; }
    fi
    # 4. the probe's own check
    if [ $outcome = PASS ] && [ -n "$check" ]; then
        local msg
        msg=$(cd "$w" && RC=$rc OUT=$dir/stdout ERR=$dir/stderr timeout $((2 * PROBE_TIMEOUT)) bash -ec "$check" 2>&1)
        local crc=$?
        [ $crc = 124 ] && msg="check timed out: $msg"
        [ $crc = 0 ] || { outcome=FAIL note="${msg:-check failed (exit $crc)}"; }
    fi
    [ $outcome = PASS ] && note="exit $rc${first:+: $first}"
    find "$w" -type f -size +200M -delete 2>/dev/null    # keep the disk: a runaway output is evidence enough
    record "$id" "$show" "$expect" "$outcome" "$note"
}

build_fixtures || { echo "probe_commands.sh: could not build the fixtures" >&2; exit 2; }

# =============================================================================================
# kg import
CHECK='zhishi kg stats --db db | grep -q "\"triples\":2421" || fail "store does not hold 2421 triples"'
SETUP='fx kg'
probe kg-import-ok "imports 2421 triples" ok 'zhishi kg import --db db demo.tsv'

SETUP='fx kg'; CHECK='[ -e a/b/db/STORE.json ] || [ $RC != 0 ] || fail "exit 0 but no store at a/b/db"'
probe kg-import-missing-parent "creates missing parents, or names --db" either:'a/b/db' \
    'zhishi kg import --db a/b/db demo.tsv'

SETUP='fx kg; echo "my notes" > notes.txt'
probe kg-import-db-is-file "refuses a regular file as --db, file kept" refuse:'notes.txt' \
    'zhishi kg import --db notes.txt demo.tsv'

SETUP='fx kg; mkdir photos; echo jpeg > photos/a.jpg'
probe kg-import-db-foreign-dir "a non-empty non-store dir as --db: refused or files kept" either:'photos' \
    'zhishi kg import --db photos demo.tsv'

SETUP='mkdir d; cp "$FIX/kg/demo.tsv" d/'
CHECK='[ $RC != 0 ] || zhishi kg stats --db d | grep -q "\"triples\":2421" || fail "store in d lacks the triples"'
probe kg-import-input-inside-db "input file inside the --db dir: kept intact" either:'d' \
    'zhishi kg import --db d d/demo.tsv'

SETUP='fx kg; ln -s demo.tsv link.tsv'
probe kg-import-db-symlink-to-input "--db is a symlink to the input file: refused, input kept" refuse:'link.tsv|demo.tsv' \
    'zhishi kg import --db link.tsv demo.tsv'

SETUP=': > empty.tsv'; CHECK='[ ! -e db/STORE.json ] || fail "an empty store was committed from an empty file"'
probe kg-import-empty "refuses an empty input, names it" refuse:'empty.tsv' 'zhishi kg import --db db --format tsv empty.tsv'

SETUP='printf "a\tb\tc\n\xff\xfe\tp\to\nd\te\tf\n" > bad.tsv'
CHECK='grep -qE "bad.tsv:2" "$ERR" || fail "bad line not reported as bad.tsv:2"; zhishi kg stats --db db | grep -q "\"triples\":2," || fail "expected 2 triples"'
probe kg-import-invalid-utf8 "skips the bad line, reports FILE:LINE" ok 'zhishi kg import --db db bad.tsv'

SETUP='fx store; printf "a\tb\tc\nbroken line\n" > bad.tsv'
MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify | grep -q "\"triples\":2421" || fail "--strict changed the store"'
probe kg-import-strict "--strict refuses, store left as it was" refuse:'bad.tsv' 'zhishi kg import --strict --db store bad.tsv'

SETUP='mkdir tripdir'
probe kg-import-dir-input "a directory as input file: refused" refuse:'tripdir' 'zhishi kg import --db db --format tsv tripdir'

probe kg-import-missing-input "a missing input: refused, named" refuse:'nope.tsv' 'zhishi kg import --db db nope.tsv'

SETUP='fx kg'
probe kg-import-batch-0 "--batch-lines 0 refused" refuse:'batch-lines' 'zhishi kg import --db db --batch-lines 0 demo.tsv'

SETUP='fx kg'
probe kg-import-batch-huge "--batch-lines 10^19 refused" refuse:'batch-lines' 'zhishi kg import --db db --batch-lines 10000000000000000000 demo.tsv'

SETUP='fx kg'; MEM_MB=4000
probe kg-import-cache-huge "--cache-mb 10^12: refused or bounded" either:'cache-mb' 'zhishi kg import --db db --cache-mb 1000000000000 demo.tsv'

SETUP='fx store; awk "BEGIN { for (i = 1; i <= 200000; i++) printf \"s%d\\tp%d\\to%d\\n\", i, i % 50, int(i / 3) }" > huge.tsv'
MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify > s.json 2>&1 || fail "store unreadable after kill -9: $(head -1 s.json)"
grep -q "\"triples\":2421" s.json || fail "kill -9 mid-import changed the committed store: $(cat s.json)"
zhishi kg import --db store huge.tsv > /dev/null 2> e.txt || fail "rerun after kill -9 failed: $(head -1 e.txt)"
zhishi kg stats --db store --verify | grep -q "\"triples\":202421" || fail "rerun did not import everything"'
SHOW='kg import --db store huge.tsv & kill -9 after 1s; stats --verify; rerun'
probe kg-import-kill9 "kill -9 mid-import keeps the old store; rerun completes" any \
    'zhishi kg import --db store --batch-lines 20000 huge.tsv > /dev/null 2>&1 & p=$!; sleep 1; kill -9 $p; wait $p; true'

SETUP='fx kg; head -1000 demo.tsv > a.tsv; tail -1000 demo.tsv > b.tsv'
CHECK='zhishi kg stats --db db --verify > s.json 2>&1 || fail "store damaged by concurrent imports: $(head -1 s.json)"
n=$(grep -o "\"triples\":[0-9]*" s.json | cut -d: -f2)
ok=0; grep -q "in use" "$ERR" && ok=1
[ "$n" = 2000 ] || [ $ok = 1 ] || fail "both imports exited, store holds $n triples instead of 2000"'
SHOW='kg import --db db a.tsv & kg import --db db b.tsv'
probe kg-import-concurrent "two imports into one store: both land or one says in use" any \
    'zhishi kg import --db db a.tsv > o1 2>&1 & zhishi kg import --db db b.tsv > o2 2>&1; wait; cat o1 o2 >&2'

SETUP='fx store; head -1000 "$FIX/kg/demo.tsv" > a.tsv; printf "x\ty\tz%d\n" $(seq 1 1000) > b.tsv'; MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify > s.json 2>&1 || fail "store damaged by concurrent imports: $(head -1 s.json)"
n=$(grep -o "\"triples\":[0-9]*" s.json | cut -d: -f2)
ok=0; grep -q "in use" "$ERR" && ok=1
[ "$n" = 3421 ] || [ $ok = 1 ] || fail "both imports into an existing store exited 0, it holds $n triples instead of 3421"'
SHOW='kg import --db store a.tsv & kg import --db store b.tsv (existing store)'
probe kg-import-concurrent-existing "two imports into an existing store: both land or one says in use" any \
    'zhishi kg import --db store a.tsv > o1 2>&1 & zhishi kg import --db store b.tsv > o2 2>&1; wait; cat o1 o2 >&2'

SETUP='fx kg; mkdir ro; chmod -R a+rwX .; chmod 555 ro'
probe kg-import-readonly "store in a read-only dir: refused, named" refuse:'ro' 'as_nobody zhishi kg import --db ro/db demo.tsv'

# =============================================================================================
# kg stats / query / neighbors / path
CHECK='[ ! -e nostore ] || fail "kg stats created nostore"'
probe kg-stats-missing "a missing store: refused, not created" refuse:'nostore' 'zhishi kg stats --db nostore'

SETUP='mkdir emptydir'; CHECK='[ -z "$(ls -A emptydir)" ] || fail "kg stats wrote into emptydir: $(ls -A emptydir | head -3 | tr "\n" " ")"'
probe kg-stats-empty-dir "an empty dir: refused, left empty" refuse:'emptydir' 'zhishi kg stats --db emptydir'

SETUP='fx kg'
probe kg-stats-file "a triples file as --db: refused, named" refuse:'demo.tsv' 'zhishi kg stats --db demo.tsv'

SETUP='fx store; f=$(ls -S store/gen-*/db | head -1); truncate -s 4096 store/gen-*/db'
MAY_CHANGE='store/*'
probe kg-stats-verify-truncated "--verify on a truncated store: exit 1, no panic" refuse:'store' 'zhishi kg stats --db store --verify'

SETUP='fx store; printf "garbage{" > store/STORE.json'; MAY_CHANGE='store/*'
probe kg-stats-bad-manifest "garbled STORE.json: refused, named" refuse:'STORE.json' 'zhishi kg stats --db store'

SETUP='fx store'; SHOW='kg stats while another process holds the store'
CHECK='[ $RC != 0 ] && grep -qi "in use" "$ERR" || fail "no in-use refusal (exit $RC): $(head -1 "$ERR")"'
probe kg-stats-locked "a store in use: refused within seconds" any \
    'zhishi kg stats --db store > /dev/null 2>&1; (printf "x\n"; sleep 8) | zhishi link --db store > /dev/null 2>&1 & sleep 3; zhishi kg stats --db store; rc=$?; wait; exit $rc'

SETUP='fx store'; CHECK='[ ! -s "$OUT" ] || fail "--limit 0 printed triples"'
probe kg-query-limit-0 "--limit 0 prints nothing" either:'limit' 'zhishi kg query --db store --limit 0'

SETUP='fx store'
probe kg-query-limit-neg "--limit -1 refused" refuse:'limit' 'zhishi kg query --db store --limit -1'

SETUP='fx store'; CHECK='[ ! -s "$OUT" ] || fail "triples for an unknown subject"'
probe kg-query-unknown "unknown subject: no triples, exit 0" ok 'zhishi kg query --db store --subject 不存在的东西'

SETUP='fx store'
probe kg-query-invalid-utf8-arg "an invalid-UTF-8 --subject: refused or empty" either:'subject|utf' 'zhishi kg query --db store --subject $'"'"'\xff\xfe'"'"''

SETUP='fx store'; SHOW='kg query --db store | head -c1'
probe kg-query-closed-pipe "stdout closed early: no panic" any 'zhishi kg query --db store | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='fx store'
probe kg-neighbors-hops-0 "--hops 0: only the entity, or refused" either:'hops' 'zhishi kg neighbors --db store 阿司匹林 --hops 0'

SETUP='fx store'
probe kg-neighbors-hops-huge "--hops 2^32: refused, or bounded by --max-nodes" either:'hops' 'zhishi kg neighbors --db store 阿司匹林 --hops 4294967296'

SETUP='fx store'; MEM_MB=3000
CHECK='grep -q "\"truncated\":true" "$OUT" || fail "not marked truncated"'
probe kg-neighbors-deep "--hops 1000 --max-nodes 10: quick and truncated" ok 'zhishi kg neighbors --db store 阿司匹林 --hops 1000 --max-nodes 10'

SETUP='fx store'
probe kg-neighbors-max-nodes-0 "--max-nodes 0: refused or empty" either:'max-nodes' 'zhishi kg neighbors --db store 阿司匹林 --max-nodes 0'

SETUP='fx store'
probe kg-neighbors-unknown "unknown entity: the error names it" refuse:'不存在的东西' 'zhishi kg neighbors --db store 不存在的东西'

SETUP='fx store'; SHOW='kg neighbors --format svg --hops 3 | head -c1'
probe kg-neighbors-svg-pipe "svg into a closed pipe: no panic" any 'zhishi kg neighbors --db store 症状 --hops 3 --format svg | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='fx store'; CHECK='grep -q "\"length\":0" "$OUT" || fail "path to itself is not of length 0: $(head -c 200 "$OUT")"'
probe kg-path-self "path from an entity to itself: length 0" ok 'zhishi kg path --db store 阿司匹林 阿司匹林'

SETUP='fx store'
probe kg-path-max-hops-0 "--max-hops 0: null path or refused" either:'max-hops' 'zhishi kg path --db store 腰酸背痛 腰椎间盘突出 --max-hops 0'

SETUP='fx store'; MEM_MB=3000
probe kg-path-huge-hops "--max-hops 10^9 on a disconnected pair: bounded" either:'max-hops' 'zhishi kg path --db store 阿司匹林 胸膜摩擦音 --max-hops 1000000000'

SETUP='fx store'
probe kg-path-unknown "unknown end entity: named" refuse:'没有这个' 'zhishi kg path --db store 阿司匹林 没有这个'

# =============================================================================================
# link
SETUP='fx store corpus'; CHECK='[ "$(lines "$OUT")" = 15 ] || fail "$(lines "$OUT") output lines for 15 input lines"'
probe link-ok "one JSON line per input line" ok 'zhishi link --db store --json sample.txt'

SETUP='fx kg corpus'; CHECK='[ "$(lines "$OUT")" = 15 ] || fail "$(lines "$OUT") output lines for 15"'
probe link-tsv-db "--db as a triples file" ok 'zhishi link --db demo.tsv --json sample.txt'

SETUP='fx store; printf "高血压\n\xff\xfe\n糖尿病\n" > in.txt'
CHECK='[ "$(lines "$OUT")" = 3 ] || fail "$(lines "$OUT") output lines for 3 input lines"'
probe link-invalid-utf8 "bad line: exit 1, in.txt:2 named, other lines linked" refuse:'in.txt:2' 'zhishi link --db store --json in.txt'

SETUP='fx store; : > empty.txt'; CHECK='[ ! -s "$OUT" ] || fail "output for an empty input"'
probe link-empty "an empty input: no output, exit 0" ok 'zhishi link --db store --json empty.txt'

SETUP='fx store'
probe link-max-record-0 "--max-record-bytes 0 refused" refuse:'max-record-bytes' 'echo 高血压 | zhishi link --db store --max-record-bytes 0'

SETUP='fx store'
probe link-max-record-huge "--max-record-bytes 2 GiB refused" refuse:'max-record-bytes' 'echo 高血压 | zhishi link --db store --max-record-bytes 2147483648'

SETUP='fx store; { head -c 3000000 /dev/zero | tr "\0" "a"; echo; echo 高血压; } > long.txt'; MEM_MB=2500
CHECK='[ "$(lines "$OUT")" = 2 ] || fail "$(lines "$OUT") output lines for 2 input lines"'
probe link-oversize-line "a 3 MB line: reported and skipped, exit 1" refuse:'long.txt:1' 'zhishi link --db store --json long.txt'

SETUP='fx store big'; SHOW='zhishi link --db store big.txt | head -c1'
probe link-closed-pipe "stdout closed early: no panic" any 'zhishi link --db store big.txt | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='fx store; mkdir dir'
probe link-dir-input "a directory as input: refused, named" refuse:'dir' 'zhishi link --db store dir'

SETUP='fx store'
probe link-nil-nan "--nil-threshold NaN: refused" refuse:'nil-threshold' 'echo 高血压 | zhishi link --db store --nil-threshold NaN'

SETUP='fx store; printf "{\"text\":\"高血压\"}\nnot json\n{\"t\":1}\n" > in.jsonl'
CHECK='[ "$(lines "$OUT")" = 3 ] || fail "$(lines "$OUT") output lines for 3"'
probe link-jsonl-bad "bad JSONL lines: exit 1, FILE:LINE named" refuse:'in.jsonl:2' 'zhishi link --db store --json --text-field text in.jsonl'

CHECK='[ ! -e nostore ] || fail "link created the missing store nostore"'
probe link-missing-db "a missing --db: refused, not created" refuse:'nostore' 'echo 高血压 | zhishi link --db nostore'

SETUP='mkdir emptydir'; CHECK='[ -z "$(ls -A emptydir)" ] || fail "link wrote into emptydir"'
probe link-empty-db-dir "an empty dir as --db: refused, left empty" refuse:'emptydir' 'echo 高血压 | zhishi link --db emptydir'

# =============================================================================================
# run
SETUP='fx quickstart'; CHECK='ids_once out.jsonl 15'
probe run-ok "15 documents, each id once" ok 'zhishi run pipeline.toml --input in.txt --output out.jsonl'

SETUP='fx quickstart'
probe run-out-eq-in "--output = --input: refused, input kept" refuse:'in.txt' 'zhishi run pipeline.toml --input in.txt --output in.txt'

SETUP='fx quickstart; mkdir sub'
probe run-out-eq-in-spelling "--output ./sub/../in.txt = input: refused" refuse:'in.txt' 'zhishi run pipeline.toml --input in.txt --output ./sub/../in.txt'

SETUP='fx quickstart; ln -s in.txt alias.txt'
probe run-out-symlink "--output a symlink to the input: refused" refuse:'in.txt|alias.txt' 'zhishi run pipeline.toml --input in.txt --output alias.txt'

SETUP='fx quickstart; ln in.txt hard.txt'
probe run-out-hardlink "--output a hard link to the input: refused" refuse:'in.txt|hard.txt' 'zhishi run pipeline.toml --input in.txt --output hard.txt'

SETUP='fx quickstart'
probe run-out-eq-pipeline "--output = the pipeline TOML: refused, TOML kept" refuse:'pipeline.toml' 'zhishi run pipeline.toml --input in.txt --output pipeline.toml'

SETUP='fx quickstart'
probe run-out-eq-kg "--output = the pipeline's KG file: refused, KG kept" refuse:'demo.tsv' 'zhishi run pipeline.toml --input in.txt --output demo.tsv'

SETUP='fx storepipe'
probe run-out-in-store "--output inside the KG store: refused, store kept" refuse:'store' 'zhishi run pipeline.toml --input in.txt --output store/conf'

SETUP='fx quickstart'
probe run-errors-eq-in "--errors = --input: refused" refuse:'in.txt' 'printf "ok\n\xff\n" > in2.txt; zhishi run pipeline.toml --input in.txt --output out.jsonl --errors in.txt'

SETUP='fx quickstart'
probe run-errors-eq-out "--errors = --output: refused" refuse:'out.jsonl' 'zhishi run pipeline.toml --input in.txt --output out.jsonl --errors out.jsonl'

SETUP='fx quickstart'; CHECK='[ $RC != 0 ] || ids_once a/b/out.jsonl 15'
probe run-out-missing-parent "--output a/b/out.jsonl: created or named" either:'a/b' 'zhishi run pipeline.toml --input in.txt --output a/b/out.jsonl'

SETUP='fx quickstart; mkdir outdir'
probe run-out-dir "--output a directory: refused" refuse:'outdir' 'zhishi run pipeline.toml --input in.txt --output outdir'

SETUP='fx quickstart; echo "{\"old\":1}" > out.jsonl'; MAY_CHANGE='out.jsonl'; CHECK='ids_once out.jsonl 15'
probe run-out-existing "an existing output is replaced on success" ok 'zhishi run pipeline.toml --input in.txt --output out.jsonl'

SETUP='fx quickstart; echo "{\"old\":1}" > out.jsonl'
probe run-fail-keeps-output "a failing run (missing input) keeps the old output" refuse:'missing.txt' 'zhishi run pipeline.toml --input missing.txt --output out.jsonl'

SETUP='fx quickstart; : > empty.txt'
CHECK='[ $RC != 0 ] || [ -e out.jsonl ] || fail "exit 0 but no out.jsonl"; [ ! -s out.jsonl ] || fail "output for an empty input"'
probe run-empty-input "an empty input: empty output or a clear refusal" either:'empty.txt|record' 'zhishi run pipeline.toml --input empty.txt --output out.jsonl'

SETUP='fx quickstart; printf "高血压\n\xff\xfe\n糖尿病\n" > bad.txt'
CHECK='[ "$(lines out.jsonl)" = 2 ] || fail "out.jsonl: $(lines out.jsonl) lines, expected 2"; [ "$(lines out.errors.jsonl)" = 1 ] || fail "out.errors.jsonl: $(lines out.errors.jsonl) lines, expected 1"'
probe run-invalid-utf8 "bad record to out.errors.jsonl, others written" ok 'zhishi run pipeline.toml --input bad.txt --output out.jsonl'

SETUP='fx quickstart; printf "\xff\n\xfe\n" > bad.txt'
CHECK='[ ! -e out.jsonl ] || [ ! -s out.jsonl ] || fail "out.jsonl written by a run where nothing succeeded"'
probe run-all-bad "every record bad: exit 1, says so" refuse:'no record succeeded|bad' 'zhishi run pipeline.toml --input bad.txt --output out.jsonl'

SETUP='fx quickstart'
probe run-batch-0 "--batch-size 0: exit 2, named" refuse:'batch-size' 'zhishi run pipeline.toml --input in.txt --batch-size 0'

SETUP='fx quickstart'
probe run-batch-huge "--batch-size 2^64: refused" refuse:'batch-size' 'zhishi run pipeline.toml --input in.txt --batch-size 18446744073709551616'

SETUP='fx quickstart'
probe run-threads-neg "--threads -1: refused" refuse:'threads' 'zhishi run pipeline.toml --input in.txt --threads -1'

SETUP='fx quickstart'
probe run-max-record-0 "--max-record-bytes 0: refused" refuse:'max-record-bytes' 'zhishi run pipeline.toml --input in.txt --max-record-bytes 0'

SETUP='fx quickstart'
probe run-shard-bad "--shard 2/2: refused" refuse:'shard' 'zhishi run pipeline.toml --input in.txt --shard 2/2'

SETUP='fx quickstart'
probe run-shard-zero "--shard 0/0: refused" refuse:'shard' 'zhishi run pipeline.toml --input in.txt --shard 0/0'

SETUP='fx big'; SHOW='zhishi run pipeline.toml --input big.txt | head -c1'
probe run-closed-pipe "stdout closed early: no panic, stops" any 'zhishi run pipeline.toml --input big.txt --output - | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='fx big'; SHOW='run --output out.jsonl & kill -9 mid-run; check; --resume'
CHECK='[ ! -e out.jsonl ] || fail "after kill -9 out.jsonl exists and looks complete ($(lines out.jsonl) lines)"
zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 --resume 2> r.err || fail "--resume failed: $(head -1 r.err)"
ids_once out.jsonl $(lines big.txt)
[ ! -e out.jsonl.partial ] && [ ! -e out.jsonl.checkpoint.json ] || fail "partial or checkpoint left after the resumed run"'
probe run-kill9-resume "kill -9 mid-run, then --resume: every record once" any \
    'zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 2>/dev/null & p=$!; wait_file out.jsonl.checkpoint.json; sleep 0.5; kill -9 $p; wait $p; true'

SETUP='fx big'; SHOW='run & kill -9; rerun without --resume'
CHECK='grep -qE -- "--resume|checkpoint" "$ERR" || fail "rerun without --resume gives no hint: $(head -1 "$ERR")"'
MAY_CHANGE='out.jsonl*'
probe run-kill9-rerun "rerun without --resume: refused, points at --resume" refuse:'out.jsonl' \
    'zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 2>/dev/null & p=$!; wait_file out.jsonl.checkpoint.json; sleep 0.3; kill -9 $p; wait $p; zhishi run pipeline.toml --input big.txt --output out.jsonl'

SETUP='fx big'; SHOW='run & kill -INT (Ctrl-C); --resume'
CHECK='[ ! -e out.jsonl ] || fail "after Ctrl-C out.jsonl exists ($(lines out.jsonl) of $(lines big.txt) lines)"
zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 --resume 2> r.err || fail "--resume after Ctrl-C failed: $(head -1 r.err)"
ids_once out.jsonl $(lines big.txt)'
probe run-sigint-resume "Ctrl-C mid-run: no complete-looking output; resume finishes" any \
    'timeout -s INT 1.5 zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 2>/dev/null; true'

SETUP='fx big; head -20000 big.txt > mid.txt'; SHOW='two runs into one out.jsonl at once'
CHECK='[ -e out.jsonl ] || fail "no out.jsonl after two runs"; ids_once out.jsonl 20000'
probe run-concurrent "two runs into one output: one refuses or the output is whole" any \
    'zhishi run pipeline.toml --input mid.txt --output out.jsonl --batch-size 64 2> e1 & zhishi run pipeline.toml --input mid.txt --output out.jsonl --batch-size 64 2> e2; wait; cat e1 e2 >&2; true'

SETUP='fx big'; MAY_CHANGE='big.txt'; SHOW='run & kill -9; change input; --resume'
probe run-resume-changed-input "--resume after the input changed: refused, named" refuse:'big.txt' \
    'zhishi run pipeline.toml --input big.txt --output out.jsonl --batch-size 16 --threads 1 2>/dev/null & p=$!; wait_file out.jsonl.checkpoint.json; kill -9 $p; wait $p; echo 新的一行 >> big.txt; zhishi run pipeline.toml --input big.txt --output out.jsonl --resume'

SETUP='fx quickstart'
probe run-resume-stdin "--resume with standard input: refused" refuse:'resume|input' 'zhishi run pipeline.toml --input - --output out.jsonl --resume < in.txt'

SETUP='fx quickstart; mkdir indir'
probe run-input-dir "--input a directory: refused" refuse:'indir' 'zhishi run pipeline.toml --input indir --output out.jsonl'

SETUP='fx quickstart'
probe run-set-unknown "--set on an unknown key: refused, key named" refuse:'nonsense' 'zhishi run pipeline.toml --input in.txt --set link.nonsense=1'

SETUP='fx quickstart'
probe run-set-bad-value "--set link.nil_threshold=abc: refused, key named" refuse:'nil_threshold' 'zhishi run pipeline.toml --input in.txt --set link.nil_threshold=abc'

probe run-missing-pipeline "a missing pipeline TOML: refused, named" refuse:'nope.toml' 'echo x | zhishi run nope.toml'

SETUP='fx quickstart; printf "[pipeline]\nname = \"\xff\"\n" > bad.toml'
probe run-pipeline-invalid-utf8 "a non-UTF-8 pipeline: refused, named" refuse:'bad.toml' 'zhishi run bad.toml --input in.txt'

SETUP='fx quickstart'; CHECK='ls /dev/null.* 2>/dev/null | grep -q . && fail "files created next to /dev/null"; true'
probe run-out-devnull "--output /dev/null: ok, nothing else written" ok 'zhishi run pipeline.toml --input in.txt --output /dev/null'

SETUP='fx quickstart; mkdir ro; chmod -R a+rwX .; chmod 555 ro'
probe run-out-readonly "--output in a read-only dir: refused, named" refuse:'ro' 'as_nobody zhishi run pipeline.toml --input in.txt --output ro/out.jsonl'

SETUP='fx quickstart; echo stale > out.jsonl.partial'
probe run-stale-partial "a stray OUTPUT.partial: refused, named" refuse:'partial' 'zhishi run pipeline.toml --input in.txt --output out.jsonl'

SETUP='fx storepipe'; SHOW='run over a store another process holds'
probe run-store-locked "store in use: refused with a clear message" refuse:'in use|store' \
    '(printf "x\n"; sleep 8) | zhishi link --db store > /dev/null 2>&1 & sleep 3; zhishi run pipeline.toml --input in.txt --output out.jsonl; rc=$?; wait; exit $rc'

SETUP='fx quickstart; printf "{\"text\":\"高血压\"}\n" > in.jsonl'
probe run-jsonl-missing-field "jsonl with --text-field absent everywhere: exit 1" refuse:'body|missing|field|no record' 'zhishi run pipeline.toml --input in.jsonl --output out.jsonl --text-field body'

# =============================================================================================
# serve
SETUP='fx quickstart'; SHOW='serve on 127.0.0.1:0; GET /healthz; POST /v1/process; SIGTERM'
probe serve-basic "healthz 200, process 200, clean stop" ok \
    'serve_bg pipeline.toml || exit 1; a=$(http "http://127.0.0.1:$PORT/healthz"); b=$(http "http://127.0.0.1:$PORT/v1/process" -d "{\"text\":\"高血压\"}"); serve_stop; rc=$?; echo "healthz=$a process=$b" >&2; [ "$a" = 200 ] && [ "$b" = 200 ] && [ $rc = 0 ]'

SETUP='fx quickstart'; SHOW='serve; POST invalid JSON, unknown route, both text+texts'
probe serve-bad-requests "400 / 404 / 400 with JSON errors, server survives" ok \
    'serve_bg pipeline.toml || exit 1; a=$(http "http://127.0.0.1:$PORT/v1/process" -d "{not json"); b=$(http "http://127.0.0.1:$PORT/nothing"); c=$(http "http://127.0.0.1:$PORT/v1/process" -d "{\"text\":\"a\",\"texts\":[\"b\"]}"); d=$(http "http://127.0.0.1:$PORT/healthz"); serve_stop; echo "bad=$a route=$b both=$c after=$d" >&2; [ "$a" = 400 ] && [ "$b" = 404 ] && [ "$c" = 400 ] && [ "$d" = 200 ]'

SETUP='fx quickstart'; SHOW='serve --max-body-bytes 64; POST 1 MB; POST 257 texts'
probe serve-oversize "413 for big bodies and >256 texts" ok \
    'serve_bg pipeline.toml --max-body-bytes 64 || exit 1; head -c 1000000 /dev/zero | tr "\0" "a" > big.body; a=$(http "http://127.0.0.1:$PORT/v1/process" --data-binary @big.body); serve_stop; serve_bg pipeline.toml || exit 1; python3 -c "import json; print(json.dumps({\"texts\": [\"a\"]*257}))" > many.json; b=$(http "http://127.0.0.1:$PORT/v1/process" --data-binary @many.json); serve_stop; echo "big=$a many=$b" >&2; [ "$a" = 413 ] && [ "$b" = 413 ]'

SETUP='fx quickstart'; SHOW='serve --addr on a port already in use'
probe serve-port-in-use "a busy port: refused, address named" refuse:'127.0.0.1|addr|address' \
    'serve_bg pipeline.toml || exit 1; zhishi serve pipeline.toml --addr 127.0.0.1:$PORT & p2=$!; sleep 3; if kill -0 $p2 2>/dev/null; then kill $p2; wait $p2; serve_stop; exit 0; fi; wait $p2; rc=$?; serve_stop 2>/dev/null; exit $rc'

SETUP='fx quickstart'
probe serve-bad-addr "--addr garbage: refused, named" refuse:'addr|nonsense' 'timeout 5 zhishi serve pipeline.toml --addr nonsense:port'

SETUP='fx quickstart'
probe serve-in-flight-0 "--max-in-flight 0: exit 2" refuse:'max-in-flight' 'timeout 5 zhishi serve pipeline.toml --max-in-flight 0 --addr 127.0.0.1:0'

SETUP='fx quickstart'
probe serve-timeout-huge "--timeout 10^20: refused" refuse:'timeout' 'timeout 5 zhishi serve pipeline.toml --timeout 100000000000000000000 --addr 127.0.0.1:0'

SETUP='fx quickstart'; SHOW='serve; POST invalid UTF-8 body; kbert-tree garbage'
probe serve-invalid-utf8 "invalid UTF-8 body: 400, server survives" ok \
    'serve_bg pipeline.toml || exit 1; printf "{\"text\":\"\xff\xfe\"}" > bad.body; a=$(http "http://127.0.0.1:$PORT/v1/process" --data-binary @bad.body); b=$(http "http://127.0.0.1:$PORT/v1/kbert-tree" -d "{\"garbage\":1}"); c=$(http "http://127.0.0.1:$PORT/healthz"); serve_stop; echo "utf8=$a tree=$b after=$c" >&2; [ "$a" = 400 ] && [ "${b:0:1}" = 4 ] && [ "$c" = 200 ]'

# =============================================================================================
# encode
SETUP='fx model'; CHECK='grep -q last_hidden_state "$OUT" || fail "no hidden states"'
probe encode-ok "a batch of ids: hidden states" ok 'echo "{\"input_ids\":[[2,5,6,3]]}" | zhishi encode --model .'

CHECK='[ ! -e nomodel ] || fail "created nomodel"'
probe encode-missing-model "a missing --model: refused, named" refuse:'nomodel' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model nomodel'

SETUP='fx model; rm model.safetensors'
probe encode-no-weights "a model dir without weights: refused, named" refuse:'safetensors|pytorch_model|weights' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model .'

SETUP='fx model; truncate -s 1000 model.safetensors'
probe encode-truncated-weights "truncated weights: refused, file named" refuse:'model.safetensors' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model .'

SETUP='fx model'
probe encode-bad-json "an invalid JSON line: refused, line named" refuse:'line 2|:2' 'printf "{\"input_ids\":[[2,3]]}\n{oops\n" | zhishi encode --model .'

SETUP='fx model'
probe encode-id-out-of-vocab "an id beyond the vocabulary: refused" refuse:'input_ids|vocab|999999' 'echo "{\"input_ids\":[[2,999999,3]]}" | zhishi encode --model .'

SETUP='fx model'
probe encode-negative-id "a negative id: refused" refuse:'input_ids|-1' 'echo "{\"input_ids\":[[2,-1,3]]}" | zhishi encode --model .'

SETUP='fx model'
probe encode-too-long "40 ids > max_position_embeddings 32: refused" refuse:'position|longer|too long|max_len' \
    'python3 -c "import json; print(json.dumps({\"input_ids\": [[5]*40]}))" | zhishi encode --model .'

SETUP='fx model'
probe encode-ragged "a ragged batch: refused" refuse:'input_ids|ragged|length|row' 'echo "{\"input_ids\":[[2,5,3],[2,3]]}" | zhishi encode --model .'

SETUP='fx model'; CHECK='[ ! -s "$OUT" ] || fail "output for an empty input"'
probe encode-empty "an empty input: no output, exit 0" ok 'zhishi encode --model . < /dev/null'

SETUP='fx model'; CHECK='grep -q embedding "$OUT" || fail "no embedding for the long text"'
probe encode-long-text "2000-char text: cut to the model's length" ok 'python3 -c "import json; print(json.dumps({\"text\": \"张三住在北京\"*333}))" | zhishi encode --model . --pooling mean'

SETUP='fx model'; SHOW='encode 2000 lines | head -c1'
probe encode-closed-pipe "stdout closed early: no panic" any 'for i in $(seq 1 2000); do echo "{\"input_ids\":[[2,5,6,3]]}"; done | zhishi encode --model . | head -c1 > /dev/null; exit ${PIPESTATUS[1]}'

SETUP='fx model; python3 -c "import json; c=json.load(open(\"config.json\")); c[\"vocab_size\"]=4000000000; json.dump(c, open(\"config.json\",\"w\"))"'
MEM_MB=3000
probe encode-config-huge-vocab "config vocab_size 4e9: refused, bounded memory" refuse:'config.json|vocab_size|shape|word_embeddings' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model .'

SETUP='fx model'
probe encode-cuda "--device cuda:0 without CUDA: refused, named" refuse:'cuda|device' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model . --device cuda:0'

SETUP='fx model'
probe encode-entity-emb-missing "--entity-embeddings missing: refused, named" refuse:'ents.safetensors|entity-embeddings' 'echo "{\"input_ids\":[[2,3]]}" | zhishi encode --model . --entity-embeddings ents.safetensors'

# =============================================================================================
# kbert
SETUP='fx model'; CHECK='grep -q visible_matrix "$OUT" || fail "no visible matrix"'
probe kbert-ok "a tree: tokens, positions, visible matrix" ok \
    'echo "{\"text\":\"张三住在北京\",\"tree\":[{\"word\":\"张三\"},{\"word\":\"住在\"},{\"word\":\"北京\",\"injected\":[\"上海\"]}]}" | zhishi kbert --max-length 16 --vocab vocab.txt'

SETUP='fx model'
probe kbert-max-length-0 "--max-length 0: refused" refuse:'max-length' 'echo "{\"text\":\"张三\",\"tree\":[{\"word\":\"张三\"}]}" | zhishi kbert --max-length 0 --vocab vocab.txt'

SETUP='fx model'; MEM_MB=3000
probe kbert-max-length-huge "--max-length 10^8 (an L x L matrix): refused or bounded" refuse:'max-length' 'echo "{\"text\":\"张三\",\"tree\":[{\"word\":\"张三\"}]}" | zhishi kbert --max-length 100000000 --vocab vocab.txt'

probe kbert-missing-vocab "a missing --vocab: refused, named" refuse:'nope.txt' 'echo "{\"text\":\"张三\"}" | zhishi kbert --max-length 8 --vocab nope.txt'

SETUP='fx model; echo keep > notadir'
probe kbert-svg-is-file "--svg a regular file: refused, file kept" refuse:'notadir' 'echo "{\"text\":\"张三\",\"tree\":[{\"word\":\"张三\"}]}" | zhishi kbert --max-length 8 --vocab vocab.txt --svg notadir'

SETUP='fx model'
probe kbert-svg-into-model "--svg . (the model dir): vocab and weights kept" any 'echo "{\"text\":\"张三\",\"tree\":[{\"word\":\"张三\"}]}" | zhishi kbert --max-length 8 --vocab vocab.txt --svg .'

SETUP='fx model'
probe kbert-text-no-db "text-only input without --db: refused, --db named" refuse:'--db|tree' 'echo "{\"text\":\"张三住在北京\"}" | zhishi kbert --max-length 8 --vocab vocab.txt'

SETUP='fx model; cp -a "$FIX/store/." .'; CHECK='grep -q input_ids "$OUT" || fail "no output"'
probe kbert-db "text-only input with --db: ok" ok 'echo "{\"text\":\"患者头痛发热\"}" | zhishi kbert --max-length 16 --vocab vocab.txt --db store'

SETUP='fx model'
probe kbert-bad-json "an invalid JSON line: refused, line named" refuse:'line 1|:1|json' 'echo "{oops" | zhishi kbert --max-length 8 --vocab vocab.txt'

# =============================================================================================
# transe
SETUP='fx store'; MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify > s.json 2>&1 || fail "store damaged: $(head -1 s.json)"'
probe transe-train-ok "trains, vectors saved in the store" ok 'zhishi transe train --db store --dim 8 --epochs 1 --threads 1'

SETUP='fx store'
probe transe-dim-0 "--dim 0: refused" refuse:'dim' 'zhishi transe train --db store --dim 0 --epochs 1'

SETUP='fx store'; MEM_MB=3000
probe transe-dim-huge "--dim 2^32-1: refused or bounded memory" refuse:'dim' 'zhishi transe train --db store --dim 4294967295 --epochs 1 --threads 1'

SETUP='fx store'
probe transe-lr-nan "--lr NaN: refused" refuse:'lr' 'zhishi transe train --db store --dim 8 --epochs 1 --lr NaN'

SETUP='fx store'
probe transe-batch-0 "--batch-size 0: refused" refuse:'batch-size' 'zhishi transe train --db store --dim 8 --epochs 1 --batch-size 0'

SETUP='fx store'
probe transe-negatives-0 "--negatives 0: refused" refuse:'negatives' 'zhishi transe train --db store --dim 8 --epochs 1 --negatives 0'

SETUP='fx store'; MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify > s.json 2>&1 || fail "store damaged by --export into it: $(head -1 s.json)"'
probe transe-export-eq-db "--export = --db: refused, store intact" refuse:'export|store' 'zhishi transe train --db store --dim 8 --epochs 1 --export store'

SETUP='fx store; echo keep > vec.txt'
probe transe-export-file "--export an existing file: refused, file kept" refuse:'vec.txt' 'zhishi transe train --db store --dim 8 --epochs 1 --export vec.txt'

SETUP='fx store'; MAY_CHANGE='store/*'
CHECK='zhishi kg stats --db store --verify > s.json 2>&1 || fail "store damaged: $(head -1 s.json)"'
probe transe-checkpoint-in-store "--checkpoint store/STORE.json: refused, store intact" refuse:'STORE.json|checkpoint' 'zhishi transe train --db store --dim 8 --epochs 1 --checkpoint store/STORE.json'

SETUP='fx store'
probe transe-resume-missing "--resume a missing file: refused, named" refuse:'ck.safetensors' 'zhishi transe train --db store --dim 8 --epochs 2 --resume ck.safetensors'

SETUP='fx store'; MAY_CHANGE='store/* ck.st'; SHOW='transe --checkpoint ck.st; flip a byte; --resume ck.st'
probe transe-resume-corrupt "--resume a corrupted checkpoint: refused as corrupted" refuse:'ck.st' \
    'zhishi transe train --db store --dim 8 --epochs 1 --threads 1 --checkpoint ck.st > /dev/null 2>&1 || exit 99; python3 -c "
import sys; b = bytearray(open(\"ck.st\",\"rb\").read()); b[-5] ^= 0xff; open(\"ck.st\",\"wb\").write(b)"; zhishi transe train --db store --epochs 2 --resume ck.st'

SETUP='fx store'; MAY_CHANGE='store/* ck.st'; SHOW='transe --checkpoint & kill -9; --resume'
CHECK='zhishi transe train --db store --epochs 60 --threads 1 --resume ck.st > r.json 2> r.err || fail "resume after kill -9 failed: $(head -1 r.err)"'
probe transe-kill9-resume "kill -9 mid-training; resume from checkpoint" any \
    'zhishi transe train --db store --dim 32 --epochs 2000 --threads 1 --checkpoint ck.st > /dev/null 2>&1 & p=$!; wait_file ck.st; sleep 0.3; kill -9 $p || exit 98; wait $p; true'

SETUP='fx lp'; CHECK='grep -q "\"mrr\"" "$OUT" || fail "no mrr"'
probe transe-bench-ok "tiny TSV data set: one JSON line" ok 'zhishi transe bench --data . --format tsv --dim 8 --epochs 2 --threads 1'

SETUP='fx openke'; CHECK='grep -q "\"mrr\"" "$OUT" || fail "no mrr"'
probe transe-bench-openke "tiny OpenKE data set" ok 'zhishi transe bench --data . --format openke --dim 8 --epochs 2 --threads 1'

SETUP='fx lp'
probe transe-bench-format "--format bogus: refused" refuse:'format' 'zhishi transe bench --data . --format bogus'

probe transe-bench-missing "--data missing: refused, named" refuse:'nodata' 'zhishi transe bench --data nodata --format tsv --epochs 1'

SETUP='fx lp'
probe transe-bench-curves-eq-input "--curves train.txt: refused, train.txt kept" refuse:'train.txt|curves' 'zhishi transe bench --data . --format tsv --dim 8 --epochs 1 --curves train.txt'

SETUP='fx lp; : > test.txt'
probe transe-bench-empty-test "an empty test split: refused, named" refuse:'test.txt|test' 'zhishi transe bench --data . --format tsv --dim 8 --epochs 1'

# =============================================================================================
# train / eval
SETUP='fx ner; rm -rf out'; CHECK='[ -e out/best/model.safetensors ] || fail "no out/best"'
probe train-ok "trains, writes out/best" ok 'zhishi train ner.toml'

SETUP='fx ner; rm -rf out'; MAY_CHANGE='out/*'
probe train-output-dot "train.output_dir=\".\": data and TOML kept" any 'zhishi train ner.toml --set train.output_dir=\".\"'

SETUP='fx ner; rm -rf out'
probe train-output-eq-model "output_dir = the encoder dir: model kept" any 'zhishi train ner.toml --set train.output_dir=\"model\"'

SETUP='fx ner; rm -rf out; echo keep > outfile'
probe train-output-file "output_dir an existing file: refused, named" refuse:'outfile' 'zhishi train ner.toml --set train.output_dir=\"outfile\"'

SETUP='fx ner; rm -rf out'
probe train-missing-data "data.train missing: refused, named" refuse:'missing.bmes' 'zhishi train ner.toml --set data.train=\"missing.bmes\"'

SETUP='fx ner; rm -rf out; : > empty.bmes'
probe train-empty-data "an empty training file: refused, named" refuse:'empty.bmes' 'zhishi train ner.toml --set data.train=\"empty.bmes\"'

SETUP='fx ner; rm -rf out; printf "张 B-PER\n\xff O\n\n" > bad.bmes'
probe train-invalid-utf8 "invalid UTF-8 in BMES: FILE:LINE named" refuse:'bad.bmes:2' 'zhishi train ner.toml --set data.train=\"bad.bmes\"'

SETUP='fx ner; rm -rf out'
probe train-epochs-0 "train.epochs=0: refused, key named" refuse:'epochs' 'zhishi train ner.toml --set train.epochs=0'

SETUP='fx ner; rm -rf out'
probe train-batch-0 "train.batch_size=0: refused, key named" refuse:'batch_size' 'zhishi train ner.toml --set train.batch_size=0'

SETUP='fx ner; rm -rf out'
probe train-epochs-neg "train.epochs=-1: refused, key named" refuse:'epochs' 'zhishi train ner.toml --set train.epochs=-1'

SETUP='fx ner; rm -rf out'
probe train-lr-nan "train.lr=nan: refused, key named" refuse:'lr' 'zhishi train ner.toml --set train.lr=nan'

SETUP='fx ner; rm -rf out'
probe train-max-len-huge "data.max_len 100000 > the model's 32: refused" refuse:'max_len|position' 'zhishi train ner.toml --set data.max_len=100000'

SETUP='fx ner; rm -rf out'; SHOW='two trains into one output_dir at once'
CHECK='zhishi eval ner.toml > ev.json 2> ev.err || fail "eval after concurrent training failed: $(head -1 ev.err)"'
probe train-concurrent "two trainings into one output_dir: a loadable model remains" any \
    'zhishi train ner.toml --set train.epochs=20 > o1 2>&1 & zhishi train ner.toml --set train.epochs=20 > o2 2>&1; wait; cat o1 o2 | grep -v "^{" >&2; true'

SETUP='fx ner'; MAY_CHANGE='out/*'; SHOW='train & kill -9; train --set train.resume=true; eval'
CHECK='zhishi eval ner.toml > ev.json 2> ev.err || fail "eval after kill -9 + resume failed: $(head -1 ev.err)"'
probe train-kill9-resume "kill -9 mid-training, resume: model loads" any \
    'rm -rf out; zhishi train ner.toml --set train.epochs=400 > /dev/null 2>&1 & p=$!; wait_file out/last/params.safetensors; sleep 0.3; kill -9 $p || exit 98; wait $p; zhishi train ner.toml --set train.epochs=401 --set train.resume=true > /dev/null'

SETUP='fx ner; rm -rf out'
probe eval-untrained "eval before training: refused, out/best named" refuse:'out/best|out' 'zhishi eval ner.toml'

SETUP='fx ner'
probe eval-split-bogus "--split bogus: refused" refuse:'split' 'zhishi eval ner.toml --split bogus'

SETUP='fx ner'; CHECK='grep -q "\"f1\"" "$OUT" || fail "no f1"'
probe eval-int8 "eval --precision int8" ok 'zhishi eval ner.toml --precision int8'

SETUP='fx ner; truncate -s 100 out/best/model.safetensors'; MAY_CHANGE='out/*'
probe eval-truncated-model "a truncated trained model: refused, file named" refuse:'model.safetensors' 'zhishi eval ner.toml'

# =============================================================================================
# init
CHECK='grep -q "kind = \"ner\"" "$OUT" || fail "no [task] kind"'
probe init-config "init config --task ner prints a TOML" ok 'zhishi init config --task ner'

probe init-config-bogus "--task bogus: refused" refuse:'task' 'zhishi init config --task bogus'

SETUP='echo "my pipeline" > p.toml'
probe init-existing "-o an existing file without --force: refused, kept" refuse:'p.toml' 'zhishi init pipeline -o p.toml'

SETUP='mkdir somedir'
probe init-dir "-o a directory: refused, named" refuse:'somedir' 'zhishi init pipeline -o somedir --force'

CHECK='[ $RC != 0 ] || [ -s a/b/p.toml ] || fail "exit 0 but a/b/p.toml missing"'
probe init-missing-parent "-o a/b/p.toml: created or named" either:'a/b' 'zhishi init pipeline -o a/b/p.toml'

SHOW='zhishi init pipeline | head -c1'
probe init-closed-pipe "stdout closed early: no panic" any 'zhishi init pipeline | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='fx quickstart'; CHECK='zhishi run p.toml --input in.txt --output - > o.jsonl 2> r.err || fail "generated pipeline does not run: $(head -1 r.err)"'
probe init-pipeline-runs "the generated pipeline runs" ok 'zhishi init pipeline -o p.toml'

# =============================================================================================
# compare
SETUP='fx ner'; CHECK='[ -s cmp.json ] && [ -s cmp.svg ] || fail "cmp.json / cmp.svg missing"'
probe compare-ok "two arms, JSON + chart" ok 'zhishi compare cmp.toml --knowledge plain,kbert --seeds 1 --out cmp.json'

SETUP='fx ner'; MAY_CHANGE='out/*'
probe compare-out-eq-config "--out = the config: refused, config kept" refuse:'cmp.toml' 'zhishi compare cmp.toml --knowledge plain --seeds 1 --out cmp.toml'

SETUP='fx ner'; MAY_CHANGE='out/*'
probe compare-chart-eq-data "--chart = train.bmes: refused, data kept" refuse:'train.bmes' 'zhishi compare cmp.toml --knowledge plain --seeds 1 --out c.json --chart train.bmes'

SETUP='fx ner'; MAY_CHANGE='out/*'
probe compare-out-model "--out inside the encoder dir, named like its weights: refused" refuse:'model/model.safetensors' 'zhishi compare cmp.toml --knowledge plain --seeds 1 --out model/model.safetensors'

SETUP='fx ner'
probe compare-seeds-0 "--seeds 0: refused" refuse:'seed' 'zhishi compare cmp.toml --knowledge plain --seeds 0'

SETUP='fx ner'
probe compare-knowledge-bogus "--knowledge bogus: refused" refuse:'knowledge|bogus' 'zhishi compare cmp.toml --knowledge bogus --seeds 1'

# =============================================================================================
# pretrain / distill / fill-mask
SETUP='fx ner; rm -rf pt'; CHECK='[ -e pt/best/model.safetensors ] || fail "no pt/best"'
probe pretrain-ok "pretrains, writes pt/best" ok 'zhishi pretrain pretrain.toml'

SETUP='fx ner'
probe pretrain-wrong-kind "a ner TOML: refused, kind named" refuse:'kind|ner' 'zhishi pretrain ner.toml'

SETUP='fx ner; rm -rf pt; : > empty.txt'
probe pretrain-empty-corpus "an empty corpus: refused, named" refuse:'empty.txt' 'zhishi pretrain pretrain.toml --set data.corpus=\"empty.txt\"'

SETUP='fx ner; rm -rf pt'
probe pretrain-output-eq-encoder "output_dir = the encoder dir: encoder kept" any 'zhishi pretrain pretrain.toml --set train.output_dir=\"model\"'

SETUP='fx ner; rm -rf student'; CHECK='[ -e student/best/model.safetensors ] || fail "no student/best"'
probe distill-ok "distils into student/best" ok 'zhishi distill distill.toml'

SETUP='fx ner; rm -rf student'
probe distill-missing-teacher "teacher.model missing: refused, named" refuse:'teacher|nowhere' 'zhishi distill distill.toml --set teacher.model=\"nowhere\"'

SETUP='fx ner; rm -rf student'
probe distill-output-eq-teacher "output_dir = the teacher's output dir: teacher kept" any 'zhishi distill distill.toml --set train.output_dir=\"out\"'

SETUP='fx ner'
probe distill-wrong-kind "a ner TOML: refused" refuse:'kind|distill' 'zhishi distill ner.toml'

SETUP='fx ner'; CHECK='grep -q candidates "$OUT" || fail "no candidates"'
probe fill-mask-ok "fills a [MASK]" ok 'echo "患者头[MASK]发热" | zhishi fill-mask --model pt/best --top-k 2'

SETUP='fx ner'; CHECK='[ $RC != 0 ] || [ "$(lines "$OUT")" = 1 ] || fail "$(lines "$OUT") lines for 1 input line"'
probe fill-mask-no-mask "a line without [MASK]: one (empty) object or a clear error" either:'MASK' 'echo "患者头痛" | zhishi fill-mask --model pt/best'

SETUP='fx ner'
probe fill-mask-top-k-0 "--top-k 0: refused" refuse:'top-k' 'echo "患者[MASK]" | zhishi fill-mask --model pt/best --top-k 0'

SETUP='fx ner'; MEM_MB=3000
probe fill-mask-top-k-huge "--top-k 10^12: capped or refused" either:'top-k' 'echo "患者[MASK]" | zhishi fill-mask --model pt/best --top-k 1000000000000'

SETUP='fx ner'
probe fill-mask-input-missing "--input missing: refused, named" refuse:'nofile.txt' 'zhishi fill-mask --model pt/best --input nofile.txt'

SETUP='fx ner'
probe fill-mask-input-dir "--input a directory: refused, named" refuse:'indir' 'mkdir indir; zhishi fill-mask --model pt/best --input indir'

SETUP='fx ner'
probe fill-mask-not-mlm "--model a plain encoder: refused, cls.predictions or file named" any 'echo "患者[MASK]" | zhishi fill-mask --model model'

SETUP='fx ner'
probe fill-mask-many-masks "200 masks (> 32 positions): refused or cut, no panic" either:'MASK|long|position|length' 'python3 -c "print(\"[MASK]\"*200)" | zhishi fill-mask --model pt/best'

SETUP='fx ner'
probe fill-mask-invalid-utf8 "invalid UTF-8 line: refused, line named" refuse:'line 1|:1|utf' 'printf "\xff[MASK]\n" | zhishi fill-mask --model pt/best'

SETUP='fx ner'; SHOW='fill-mask 3000 lines | head -c1'
probe fill-mask-closed-pipe "stdout closed early: no panic" any 'for i in $(seq 1 3000); do echo "患者[MASK]"; done | zhishi fill-mask --model pt/best | head -c1 > /dev/null; exit ${PIPESTATUS[1]}'

# =============================================================================================
# quantize
SETUP='mkdir m; cp -a "$FIX/model/." m/'; CHECK='[ -e q/model.safetensors ] || fail "no q/model.safetensors"'
probe quantize-ok "writes an int8 copy" ok 'zhishi quantize --model m --output q'

SETUP='mkdir m; cp -a "$FIX/model/." m/'
probe quantize-out-eq-model "--output = --model: refused, model kept" refuse:'output|model' 'zhishi quantize --model m --output m'

SETUP='mkdir m; cp -a "$FIX/model/." m/; ln -s m alias'
probe quantize-out-symlink "--output a symlink to --model: refused" refuse:'alias' 'zhishi quantize --model m --output alias'

SETUP='mkdir m; cp -a "$FIX/model/." m/; mkdir outq; echo keep > outq/notes.txt'
probe quantize-out-nonempty "--output a non-empty dir: refused, files kept" refuse:'outq' 'zhishi quantize --model m --output outq'

SETUP='mkdir m; cp -a "$FIX/model/." m/'
probe quantize-out-inside-model "--output inside --model: refused or model kept" either:'m/q|inside' 'zhishi quantize --model m --output m/q'

SETUP='mkdir m; cp -a "$FIX/model/." m/; echo keep > qfile'
probe quantize-out-file "--output an existing file: refused, kept" refuse:'qfile' 'zhishi quantize --model m --output qfile'

SETUP='mkdir m; cp -a "$FIX/model/." m/'; MAY_CHANGE='q/*'
probe quantize-twice "quantising a quantised dir: refused" refuse:'quantis|quantiz|int8' 'zhishi quantize --model m --output q > /dev/null && zhishi quantize --model q --output q2'

probe quantize-missing "--model missing: refused, named" refuse:'nomodel' 'zhishi quantize --model nomodel --output q'

SETUP='mkdir m; cp -a "$FIX/model/." m/'; CHECK='[ $RC != 0 ] || [ -e a/b/q/model.safetensors ] || fail "exit 0 but no a/b/q"'
probe quantize-missing-parent "--output a/b/q: created or named" either:'a/b' 'zhishi quantize --model m --output a/b/q'

SETUP='mkdir m; cp -a "$FIX/model/." m/; mkdir ro; chmod -R a+rwX .; chmod 555 ro'
probe quantize-readonly "--output in a read-only dir: refused, named" refuse:'ro' 'as_nobody zhishi quantize --model m --output ro/q'

# =============================================================================================
# chart
SETUP='fx chart'; CHECK='head -c 200 c.svg | grep -q "<svg" || fail "c.svg is not an SVG"'
probe chart-ok "draws an SVG" ok 'zhishi chart -o c.svg bench.jsonl'

SETUP='fx chart'
probe chart-out-eq-in-spelling "-o ./x/../bench.jsonl = input: refused" refuse:'bench.jsonl' 'mkdir x; zhishi chart -o ./x/../bench.jsonl bench.jsonl'

SETUP='fx chart; ln -s bench.jsonl alias.svg'
probe chart-out-symlink "-o a symlink to the input: refused" refuse:'bench.jsonl|alias.svg' 'zhishi chart -o alias.svg bench.jsonl'

SETUP='fx chart; ln bench.jsonl hard.svg'
probe chart-out-hardlink "-o a hard link to the input: refused" refuse:'bench.jsonl|hard.svg' 'zhishi chart -o hard.svg bench.jsonl'

SETUP=': > empty.json'; CHECK='[ ! -e c.svg ] || fail "c.svg written from an empty input"'
probe chart-empty "an empty input: refused, named" refuse:'empty.json' 'zhishi chart -o c.svg empty.json'

SETUP='printf "{not json\n" > bad.json'; CHECK='[ ! -e c.svg ] || fail "c.svg written from invalid JSON"'
probe chart-invalid "invalid JSON: refused, named" refuse:'bad.json' 'zhishi chart -o c.svg bad.json'

SETUP='fx chart; mkdir outdir'
probe chart-out-dir "-o a directory: refused, named" refuse:'outdir' 'zhishi chart -o outdir bench.jsonl'

SETUP='fx chart'; CHECK='[ $RC != 0 ] || [ -s a/b/c.svg ] || fail "exit 0 but no a/b/c.svg"'
probe chart-missing-parent "-o a/b/c.svg: created or named" either:'a/b' 'zhishi chart -o a/b/c.svg bench.jsonl'

# =============================================================================================
# bench
CHECK='grep -q "\"kernels\"" "$OUT" || fail "no kernels"'
probe bench-cpu "prints the CPU JSON" ok 'zhishi bench cpu'

SHOW='zhishi bench cpu | head -c1'
probe bench-cpu-closed-pipe "stdout closed early: no panic" any 'zhishi bench cpu | head -c1 > /dev/null; exit ${PIPESTATUS[0]}'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/'; CHECK='grep -q "\"synthetic\"" "$OUT" || fail "no synthetic result"'
probe bench-kg-ok "tiny FB15k stand-in, 1000 synthetic triples" ok 'zhishi bench kg --fb15k fb --synthetic 1000 --lookups 10 --work w'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/; mkdir here; echo precious > here/notes.txt'
probe bench-kg-work-dot "--work . in a dir of my files: refused, files kept" refuse:'error: \. |--work' 'cd here && zhishi bench kg --fb15k ../fb --synthetic 100 --lookups 5 --work .'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/'
probe bench-kg-work-eq-data "--work = --fb15k: refused, data kept" refuse:'fb' 'zhishi bench kg --fb15k fb --synthetic 100 --lookups 5 --work fb'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/'
probe bench-kg-output-eq-data "--output fb/train2id.txt: refused, data kept" refuse:'train2id.txt|output' 'zhishi bench kg --fb15k fb --synthetic 100 --lookups 5 --work w --output fb/train2id.txt'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/'
probe bench-kg-synthetic-huge "--synthetic 10^15: refused, not a disk-filling run (1 GB file limit)" refuse:'synthetic' 'ulimit -f 1000000; exec zhishi bench kg --fb15k fb --synthetic 1000000000000000 --lookups 5 --work w'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/'
probe bench-kg-lookups-0 "--lookups 0: refused or ok without division by zero" either:'lookups' 'zhishi bench kg --fb15k fb --synthetic 100 --lookups 0 --work w'

SETUP='mkdir fb; cp -a "$FIX/openke/." fb/; echo keep > wfile'
probe bench-kg-work-file "--work an existing file: refused, kept" refuse:'wfile' 'zhishi bench kg --fb15k fb --synthetic 100 --lookups 5 --work wfile'

SETUP='fx store corpus'; CHECK='grep -q "\"runs\"" "$OUT" || fail "no runs"'
probe bench-link-ok "sample corpus, demo store, no python" ok 'zhishi bench link --corpus sample.txt --db store --no-python --work w --threads 1'

SETUP='fx store corpus; mkdir here; echo precious > here/notes.txt'
probe bench-link-work-dot "--work . in a dir of my files: files kept" any 'cd here && zhishi bench link --corpus ../sample.txt --db ../store --no-python --work . --threads 1'

SETUP='fx store corpus'
probe bench-link-output-eq-corpus "--output = --corpus: refused, corpus kept" refuse:'sample.txt|output' 'zhishi bench link --corpus sample.txt --db store --no-python --work w --threads 1 --output sample.txt'

SETUP='fx store corpus'
probe bench-link-threads-0 "--threads 0: refused" refuse:'threads' 'zhishi bench link --corpus sample.txt --db store --no-python --work w --threads 0'

SETUP='fx store corpus'
probe bench-link-work-eq-store "--work = the --db store: store kept" any 'zhishi bench link --corpus sample.txt --db store --no-python --work store --threads 1'

SETUP='fx ner'; CHECK='grep -q "\"bench\":\"run\"" "$OUT" || fail "no bench JSON"'
probe bench-run-ok "tiny NER pipeline, no references" ok 'zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference none --precision f32 --threads 1 --rounds 1 --work w'

SETUP='fx ner; mkdir here; echo precious > here/notes.txt'
probe bench-run-work-dot "--work . in a dir of my files: files kept" any 'cd here && zhishi bench run ../ner-run.toml --corpus ../c.txt --model ../out/best --reference none --precision f32 --threads 1 --rounds 1 --work .'

SETUP='fx ner'
probe bench-run-out-eq-corpus "--out = --corpus: refused, corpus kept" refuse:'c.txt|out' 'zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference none --precision f32 --threads 1 --rounds 1 --work w --out c.txt'

SETUP='fx ner'
probe bench-run-work-eq-model "--work = the model dir: model kept" any 'zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference none --precision f32 --threads 1 --rounds 1 --work out/best'

SETUP='fx ner'
probe bench-run-rounds-0 "--rounds 0: refused" refuse:'rounds' 'zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference none --precision f32 --threads 1 --rounds 0 --work w'

SETUP='fx ner'
probe bench-run-precision-bogus "--precision f64: refused" refuse:'precision|f64' 'zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference none --precision f64 --threads 1 --rounds 1 --work w'

SETUP='fx ner'
probe bench-run-no-python "--reference pytorch without a Python: the error names --python / REF_PYTHON" refuse:'python|REF_PYTHON' 'env -u REF_PYTHON zhishi bench run ner-run.toml --corpus c.txt --model out/best --reference pytorch --precision f32 --threads 1 --rounds 1 --work w'

# =============================================================================================
# The table
{
    echo "| id | command | expectation | outcome | note |"
    echo "|---|---|---|---|---|"
    pass=0 failn=0
    for i in "${!IDS[@]}"; do
        esc() { local s=${1//|/\\|}; printf '%s' "${s//\`/\'}"; }
        printf '| %s | `%s` | %s | %s | %s |\n' "${IDS[$i]}" "$(esc "${CMDS[$i]}")" "$(esc "${EXPECTS[$i]}")" \
            "${OUTCOMES[$i]}" "$(esc "${NOTES[$i]}")"
        if [ "${OUTCOMES[$i]}" = PASS ]; then pass=$((pass + 1)); else failn=$((failn + 1)); fi
    done
    echo
    echo "probes: ${#IDS[@]}, pass: $pass, fail: $failn"
} > "$PROBE_ROOT/table.md"
cat "$PROBE_ROOT/table.md"
[ -n "${PROBE_TABLE:-}" ] && cp "$PROBE_ROOT/table.md" "$PROBE_TABLE"
echo "probe directories: $PROBE_ROOT/probes" >&2
exit 0
