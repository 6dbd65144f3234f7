#!/usr/bin/env python3
"""Builds kg/demo.tsv, the demo KG of common diseases, symptoms and medicines.

    python3 kg/build_demo.py                  # reads ../shared/data, writes kg/demo.tsv
    python3 kg/build_demo.py --data DIR --out FILE

Sources (all from the K-BERT repository, MIT licence; see kg/README.md):
  kg/kbert/HowNet.spo           HowNet sememes, `word 义原 sememe`
  kg/kbert/Medical.spo          medical concept types, `concept 类别 症状|疾病|部位|治疗|检查`
  ner/kbert_medical/*.tsv       K-BERT's medical NER sentences (only counted, never copied)

Selection, deterministic (same inputs, same bytes out):
  1. HowNet words of two or more characters with the sememe 疾病 (disease) or 药物 (medicine):
     every HowNet triple of these words (高血压 义原 疾病, 阿司匹林 义原 药物).
  2. Medical.spo concepts that are also HowNet words (everyday vocabulary: 手脚冰凉, 食欲不振)
     or occur at least twice in the K-BERT medical NER sentences (clinical usage:
     腰椎间盘突出): their Medical.spo triples (手脚冰凉 类别 症状), and their HowNet triples.
Output: Medical.spo triples first, then HowNet triples, each in source order, so a concept's
类别 comes before its 义原 (the facts stage keeps KG order among equally relevant facts).
"""
import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
HOWNET_SEMEMES = {"疾病", "药物"}
MIN_NER_COUNT = 2


def read_spo(path):
    with open(path, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return [tuple(r) for r in rows if len(r) == 3 and all(r)]


def ner_text(data):
    lines = []
    for split in ("train", "dev", "test"):
        with open(data / "ner" / "kbert_medical" / f"{split}.tsv", encoding="utf-8") as f:
            next(f)  # header: text_a<TAB>label
            lines.extend(line.split("\t")[0].replace(" ", "") for line in f)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=pathlib.Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=pathlib.Path, default=REPO / "kg" / "demo.tsv")
    args = ap.parse_args()

    hownet = read_spo(args.data / "kg" / "kbert" / "HowNet.spo")
    medical = read_spo(args.data / "kg" / "kbert" / "Medical.spo")
    text = ner_text(args.data)

    hownet_words = {s for s, _, _ in hownet}
    medicines_and_diseases = {
        s for s, _, o in hownet if o in HOWNET_SEMEMES and len(s) >= 2
    }
    concepts = {
        s
        for s, _, _ in medical
        if s in hownet_words or text.count(s) >= MIN_NER_COUNT
    }
    keep = medicines_and_diseases | concepts

    triples, seen = [], set()
    for t in [t for t in medical if t[0] in concepts] + [t for t in hownet if t[0] in keep]:
        if t not in seen:
            seen.add(t)
            triples.append(t)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for t in triples:
            f.write("\t".join(t) + "\n")
    subjects = {s for s, _, _ in triples}
    print(f"{args.out}: {len(triples)} triples, {len(subjects)} subjects", file=sys.stderr)


if __name__ == "__main__":
    main()
