#!/usr/bin/env python3
"""SanWen relations back into a KG (issue 33): the relation model over the SanWen test texts,
`zhishi kg import --from-run --min-score S` into a copy of a KG, and the precision of the
triples it added against the gold relations.

The test split's head and tail names become a gazetteer for the `rules` stage (label ARG), the
relation stage classifies every pair of rule entities (`pairs_from = "entities"`), and a triple
(head, label, tail) added to the KG counts as correct when the test split holds it for some
sentence (`triple precision`); a kept relation counts as correct when its own sentence's gold
lines hold it (`relation precision`).

  python3 benches/sanwen_kg_import.py --zhishi target/release/zhishi \
      --model ../models/re/sanwen/best --kg kg/demo.tsv --out target/sanwen-kg [--min-score 0.9]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("--zhishi", required=True)
p.add_argument("--model", required=True, help="relation model directory (its best/)")
p.add_argument("--kg", required=True, help="triple file the KG copy starts from")
p.add_argument("--test", default="../shared/data/re/sanwen/test.txt")
p.add_argument("--out", required=True, help="work directory (replaced)")
p.add_argument("--min-score", type=float, default=0.9)
p.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
a = p.parse_args()

if not a.resume:
    shutil.rmtree(a.out, ignore_errors=True)
os.makedirs(a.out, exist_ok=True)
gold = {}  # sentence -> set of (head, relation, tail)
pairs = {}  # sentence -> set of annotated (head, tail) pairs, `unknown` included
names = set()
for line in open(a.test, encoding="utf-8"):
    head, tail, rel, sent = line.rstrip("\n").split("\t")
    names.update([head, tail])
    pairs.setdefault(sent, set()).add((head, tail))
    if rel != "unknown":
        gold.setdefault(sent, set()).add((head, rel, tail))
    else:
        gold.setdefault(sent, set())
sentences = sorted(gold)
gold_triples = set().union(*gold.values())
if not os.path.exists(os.path.join(a.out, "input.jsonl")):  # kept for --resume
    with open(os.path.join(a.out, "patterns.jsonl"), "w", encoding="utf-8") as f:
        for n in sorted(names):
            f.write(json.dumps({"label": "ARG", "pattern": n}, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "input.jsonl"), "w", encoding="utf-8") as f:
        for i, s in enumerate(sentences):
            f.write(json.dumps({"id": f"test-{i}", "text": s}, ensure_ascii=False) + "\n")
toml = os.path.join(a.out, "sanwen-kg.toml")
with open(toml + ".new", "w", encoding="utf-8") as f:
    f.write(f"""[pipeline]
name = "sanwen-kg"
stages = ["rules", "relation"]
[rules]
patterns = "patterns.jsonl"
[relation]
model = "{os.path.abspath(a.model)}"
pairs_from = "entities"
max_distance = 64
max_pairs = 32
""")
if not os.path.exists(toml) or open(toml).read() != open(toml + ".new").read():
    os.replace(toml + ".new", toml)
run = os.path.join(a.out, "run.jsonl")
if not os.path.exists(run):
    subprocess.run([a.zhishi, "run", toml, "--input", os.path.join(a.out, "input.jsonl"),
                    "--id-field", "id", "--output", run]
                   + (["--resume"] if os.path.exists(run + ".checkpoint.json") else []),
                   check=True)
db = os.path.join(a.out, "kg")
shutil.rmtree(db, ignore_errors=True)
subprocess.run([a.zhishi, "kg", "import", "--db", db, a.kg], check=True, capture_output=True)
before = json.loads(subprocess.run([a.zhishi, "kg", "stats", "--db", db], check=True,
                                   capture_output=True, text=True).stdout)
imp = [a.zhishi, "kg", "import", "--db", db, "--from-run", run, "--min-score",
       str(a.min_score), "--pipeline", toml]
first = json.loads(subprocess.run(imp, check=True, capture_output=True, text=True).stdout)
second = json.loads(subprocess.run(imp, check=True, capture_output=True, text=True).stdout)
after = json.loads(subprocess.run([a.zhishi, "kg", "stats", "--db", db], check=True,
                                  capture_output=True, text=True).stdout)

docs = [json.loads(l) for l in open(run, encoding="utf-8")]
kept, kept_ok, triples = 0, 0, set()
on_pairs, on_pairs_ok = 0, 0
for d in docs:
    for r in d["relations"]:
        if r["score"] < a.min_score:
            continue
        t = (r["head"]["text"], r["label"], r["tail"]["text"])
        kept += 1
        kept_ok += t in gold[d["text"]]
        if (t[0], t[2]) in pairs[d["text"]]:
            on_pairs += 1
            on_pairs_ok += t in gold[d["text"]]
        triples.add(t)
correct = len(triples & gold_triples)
print(json.dumps({
    "sentences": len(sentences),
    "gold_relations": sum(len(g) for g in gold.values()),
    "relations_predicted": first["relations"],
    "min_score": a.min_score,
    "relations_kept": kept,
    "relation_precision": round(kept_ok / max(kept, 1), 4),
    "kept_on_annotated_pairs": on_pairs,
    "annotated_pair_precision": round(on_pairs_ok / max(on_pairs, 1), 4),
    "triples_added": first["new_triples"],
    "triple_precision": round(correct / max(len(triples), 1), 4),
    "correct_triples": correct,
    "kg_triples_before": before["triples"],
    "kg_triples_after": after["triples"],
    "second_import_new_triples": second["new_triples"],
    "second_import_new_provenance": second["new_provenance"],
}))
