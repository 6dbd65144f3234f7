#!/usr/bin/env python3
"""`zhishi transe predict` on FB15k-237 test (head, relation) pairs (issue 33): the share of a
sample of test triples whose true tail is among the top 10 predictions, without and with
`--include-known`, to put next to `transe bench`'s tail Hits@10 for the same vectors
(`transe bench --export DIR` wrote DIR).

  python3 benches/transe_predict_hits.py --zhishi target/release/zhishi --model DIR \
      --data ../shared/data/kg/openke/FB15K237 --sample 1000
"""
import argparse
import json
import os
import subprocess

p = argparse.ArgumentParser()
p.add_argument("--zhishi", required=True)
p.add_argument("--model", required=True)
p.add_argument("--data", required=True)
p.add_argument("--sample", type=int, default=1000)
a = p.parse_args()


def ids(path):
    lines = open(path, encoding="utf-8").read().splitlines()[1:]
    out = {}
    for l in lines:
        name, i = l.rsplit(None, 1)
        out[int(i)] = name.strip()
    return out


ent = ids(os.path.join(a.data, "entity2id.txt"))
rel = ids(os.path.join(a.data, "relation2id.txt"))
test = [tuple(map(int, l.split())) for l in open(os.path.join(a.data, "test2id.txt")).read().splitlines()[1:]]
step = max(len(test) // a.sample, 1)
sample = test[::step][: a.sample]  # spread evenly over the file
hits = {"filtered_by_train": 0, "include_known": 0}
for h, t, r in sample:
    for mode, extra in (("filtered_by_train", []), ("include_known", ["--include-known"])):
        out = subprocess.run([a.zhishi, "transe", "predict", "--model", a.model, "--head", ent[h],
                              "--relation", rel[r], "--top-k", "10"] + extra,
                             check=True, capture_output=True, text=True).stdout
        preds = [x["entity"] for x in json.loads(out)["predictions"]]
        hits[mode] += ent[t] in preds
print(json.dumps({"sample": len(sample),
                  "top10_tail_hit_rate": round(hits["filtered_by_train"] / len(sample), 4),
                  "top10_tail_hit_rate_include_known": round(hits["include_known"] / len(sample), 4)}))
