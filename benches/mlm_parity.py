"""The Hugging Face side of zhishi's masked-LM parity check (tests/pretrain/parity.rs).

Loads DIR with transformers' BertForMaskedLM (reporting missing/unexpected keys), then for the
JSON cases on stdin prints one JSON object:
  {"missing": [...], "unexpected": [...], "mismatched": [...],
   "loss": <MLM loss of "batch">, "fill": [[[token_id, prob] x top_k] per mask, per line],
   "grads": {param_name: {"norm": L2 norm, "head": first 64 values}} of that loss (eval mode,
            so no dropout), every parameter, names without the `bert.` prefix}
Input: {"batch": {"input_ids": [[..]], "attention_mask": [[..]], "labels": [[..]]},
        "fill": [{"input_ids": [..], "mask_positions": [..]}], "top_k": 5}
Token ids come from zhishi, so only the model is compared (not the tokenizers).
Usage: $REF_PYTHON benches/mlm_parity.py DIR < cases.json
"""
import json
import sys

import torch
from transformers import BertForMaskedLM


def main():
    model_dir = sys.argv[1]
    cases = json.load(sys.stdin)
    torch.set_num_threads(2)
    model, info = BertForMaskedLM.from_pretrained(model_dir, output_loading_info=True)
    model.eval()
    out = {k: sorted(info.get(k, [])) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    out = {"missing": out["missing_keys"], "unexpected": out["unexpected_keys"],
           "mismatched": [str(m) for m in out["mismatched_keys"]]}
    b = cases["batch"]
    model.zero_grad()
    r = model(input_ids=torch.tensor(b["input_ids"]),
              attention_mask=torch.tensor(b["attention_mask"]),
              labels=torch.tensor(b["labels"]))
    r.loss.backward()
    out["loss"] = float(r.loss)
    grads = {}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        grads[name.removeprefix("bert.")] = {
            "norm": float(g.double().norm()),
            "head": [float(x) for x in g.flatten()[:64]],
        }
    out["grads"] = grads
    with torch.no_grad():
        fills = []
        for case in cases["fill"]:
            logits = model(input_ids=torch.tensor([case["input_ids"]])).logits[0]
            per_mask = []
            for p in case["mask_positions"]:
                probs = torch.softmax(logits[p].double(), dim=-1)
                top = torch.topk(probs, cases["top_k"])
                per_mask.append([[int(i), float(v)] for v, i in zip(top.values, top.indices)])
            fills.append(per_mask)
        out["fill"] = fills
    print(json.dumps(out))


if __name__ == "__main__":
    main()
