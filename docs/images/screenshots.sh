#!/usr/bin/env bash
# Screenshots of the demo page of `zhishi serve` (docs/serve.md), in headless Chromium.
#
#   docs/images/screenshots.sh                        # quickstart -> docs/images/serve-quickstart.png
#   NER_MODEL=DIR docs/images/screenshots.sh          # also NER + link -> docs/images/serve-ner-link.png
#                                                     # and with explain -> docs/images/serve-ner-explain.png
#
# NER_MODEL is a model directory from `zhishi train pipelines/kbert-medical-ner.toml`
# (e.g. models/ner/kbert-medical/best); the NER + link page runs pipelines/medical-ner.toml with
# it, linking against the KG the model was trained with (Medical.spo; the `ner` stage refuses
# another), so the facts table shows what the model injected (`injected_by`). ZHISHI=path picks the binary (default: target/release/zhishi,
# built if missing). Needs Chromium and a CJK font (Debian: apt-get install chromium
# fonts-wqy-microhei) and python3 (URL encoding). Run from anywhere; writes into docs/images/.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/images
zhishi=${ZHISHI:-${CARGO_TARGET_DIR:-target}/release/zhishi}
if [ ! -x "$zhishi" ]; then
    cargo build --release --bin zhishi
fi
chromium=$(command -v chromium || command -v chromium-browser)

# shoot NAME HEIGHT TEXT PIPELINE [--set KEY=VALUE...]: serves PIPELINE on a free port, opens the
# page with TEXT preselected, and saves a 1100 x HEIGHT screenshot as docs/images/NAME.png.
shoot() {
    local name=$1 height=$2 text=$3
    shift 3
    local log profile pid addr=""
    log=$(mktemp)
    profile=$(mktemp -d)
    "$zhishi" serve "$@" --addr 127.0.0.1:0 2>"$log" &
    pid=$!
    for _ in $(seq 600); do
        addr=$(sed -n 's|^zhishi serve: listening on http://||p' "$log")
        [ -n "$addr" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "zhishi serve did not start" >&2; cat "$log" >&2; kill "$pid"; exit 1; }
    local query
    query=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$text")
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --virtual-time-budget=20000 \
        --window-size=1100,"$height" --screenshot="$out/$name.png" \
        "http://$addr/?text=$query${QUERY_EXTRA:-}" 2>/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    rm -rf "$log" "$profile"
    echo "$out/$name.png"
}

shoot serve-quickstart 1900 "腰酸背痛是腰椎间盘突出的常见症状，医生建议他做个腰椎CT检查。" \
    pipelines/quickstart.toml

if [ -n "${NER_MODEL:-}" ]; then
    shoot serve-ner-link 2400 "患者腰酸背痛三天，伴四肢无力，腰椎CT检查提示腰椎间盘突出，给予布洛芬止痛治疗。" \
        pipelines/medical-ner.toml --set "ner.model=\"$(realpath "$NER_MODEL")\""
    # The same with `explain` ticked: each entity's evidence (the facts that moved its score).
    QUERY_EXTRA="&explain=1" shoot serve-ner-explain 2400 "患者腰酸背痛三天，伴四肢无力，腰椎CT检查提示腰椎间盘突出，给予布洛芬止痛治疗。" \
        pipelines/medical-ner.toml --set "ner.model=\"$(realpath "$NER_MODEL")\""
fi
