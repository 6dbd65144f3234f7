#!/usr/bin/env python3
"""Sentence-pair classification data from NLPCC-ICCPOL 2016 KBQA (question, predicate) -> 1/0.

Each question gives two pairs: the question with its gold triple's predicate (label 1), and the
same question with another predicate (label 0): one of the same subject's other predicates
where the KBQA data knows any (its gold triples and the KB excerpt), otherwise a predicate drawn
from the whole set in proportion to its frequency (seeded, so the output is reproducible).
Split by question as pipelines/nlpcc-kbqa.toml splits (train: questions 1..11609, dev:
11610..12609, test: the last 2,000), so no question is in two splits.

    python3 corpora/nlpcc_pairs.py [DATA_DIR] [OUT_DIR]
      DATA_DIR: $ZHISHI_DATA/kg/nlpcc2016 (default; ZHISHI_DATA defaults to ../shared/data,
                relative to the repository root)
      OUT_DIR:  target/corpora/nlpcc-pairs (default): train.tsv, dev.tsv, test.tsv, stats.json

Output: K-BERT's TSV layout, header `label<TAB>text_a<TAB>text_b`. Standard library only.
Licence of the source: NLPCC 2016 via a GPL-3.0 repository (see ../shared/data/README.md);
the output is research data and is never committed.
"""
import collections
import json
import os
import random
import sys

TRAIN, DEV = 11609, 1000  # as pipelines/nlpcc-kbqa.toml: 12,609 train questions, the last 1,000 of them dev


def blocks(path):
    """(question, subject, predicate) of each question block, in file order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = []
    for n, block in enumerate(text.split("=" * 50)):
        fields = {}
        for line in block.splitlines():
            if "\t" not in line:
                continue
            key, value = line.split("\t", 1)
            fields[key.split()[0].lstrip("<")] = value.strip()
        if "question" not in fields:
            continue
        if "triple" not in fields:
            sys.exit(f"{path}: question block {n + 1} has no <triple> line")
        parts = [p.strip() for p in fields["triple"].split("|||")]
        if len(parts) != 3:
            sys.exit(f"{path}: block {n + 1}: expected `s ||| p ||| o`, found {fields['triple']!r}")
        out.append((fields["question"], parts[0], parts[1]))
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("ZHISHI_DATA") or os.path.join(root, "..", "shared", "data"), "kg", "nlpcc2016")
    out_dir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "target", "corpora", "nlpcc-pairs")
    questions = blocks(os.path.join(data, "nlpcc-iccpol-2016.kbqa.training-data"))
    by_subject = collections.defaultdict(set)
    for _, s, p in questions:
        by_subject[s].add(p)
    kb = os.path.join(data, "nlpcc-iccpol-2016.kbqa.kb")
    if os.path.exists(kb):
        with open(kb, encoding="utf-8") as f:
            for line in f:
                parts = [p.strip() for p in line.split("|||")]
                if len(parts) == 3:
                    by_subject[parts[0]].add(parts[1])
    frequency = collections.Counter(p for _, _, p in questions)
    predicates = sorted(frequency)
    weights = [frequency[p] for p in predicates]
    rng = random.Random(0)
    rows, same_subject = [], 0
    for question, subject, gold in questions:
        others = sorted(by_subject[subject] - {gold})
        if others:
            negative = rng.choice(others)
            same_subject += 1
        else:
            negative = gold
            while negative == gold:
                negative = rng.choices(predicates, weights)[0]
        rows.append([("1", question, gold), ("0", question, negative)])
    splits = {"train": rows[:TRAIN], "dev": rows[TRAIN:TRAIN + DEV], "test": rows[TRAIN + DEV:]}
    os.makedirs(out_dir, exist_ok=True)
    clean = lambda s: " ".join(s.split())  # no tab or line break inside a cell
    for name, qs in splits.items():
        tmp = os.path.join(out_dir, f".{name}.tsv.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("label\ttext_a\ttext_b\n")
            for pair in qs:
                for label, a, b in pair:
                    f.write(f"{label}\t{clean(a)}\t{clean(b)}\n")
        os.replace(tmp, os.path.join(out_dir, f"{name}.tsv"))
    stats = {
        "questions": len(questions),
        "pairs": {k: 2 * len(v) for k, v in splits.items()},
        "negatives_of_the_same_subject": same_subject,
        "negatives_drawn_by_frequency": len(questions) - same_subject,
        "predicates": len(predicates),
    }
    with open(os.path.join(out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, ensure_ascii=False, indent=1)
    print(json.dumps(stats, ensure_ascii=False))


if __name__ == "__main__":
    main()
