#!/usr/bin/env python3
"""Builds the general pretraining corpus of `zhishi pretrain` from ../shared/data (not
committed: research data): every sentence of raw Chinese text there, deduplicated, with every
sentence of an evaluation split left out.

Sources (training splits only): MSRA NER train, Resume NER train, K-BERT medical NER train,
SanWen RE train, the DuIE 2.0 sample, CMRC 2018 trial contexts (the QA stage trains on trial and
is evaluated on dev), NLPCC 2016 KBQA questions before the dev/test questions of
pipelines/nlpcc-kbqa.toml, ChnSentiCorp train reviews. Left out (and removed wherever they also
occur in a training file): MSRA test, Resume dev/test, K-BERT medical dev/test, SanWen
valid/test, CMRC 2018 dev contexts, the last 3,000 KBQA questions (dev 1,000 + test 2,000),
ChnSentiCorp dev/test. English data (FewRel) is not included.

Long texts (contexts, reviews) are split into sentences after 。！？ and line breaks;
spaces inside a sentence are removed when the source separates characters with them.
One sentence per line, in source order (the order above), first occurrence kept.

    python3 corpora/pretrain_corpus.py [--data DIR] [--out FILE]

DATA defaults to $ZHISHI_DATA, else ../shared/data, OUT to target/corpora/pretrain-all.txt. Per-source counts go
to OUT with `.stats.json` appended and to stderr. Standard library only.
"""
import argparse
import json
import os
import re
import sys

SENTENCE_END = re.compile(r"(?<=[。！？!?])|\n")
KBQA_QUESTIONS = 14609
KBQA_HELD_OUT = 3000  # pipelines/nlpcc-kbqa.toml: train_questions 12609 (dev 1000) + test 2000


def split_sentences(text):
    for part in SENTENCE_END.split(text):
        part = part.strip()
        if part:
            yield part


def bmes_sentences(path):
    chars = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if chars:
                    yield "".join(chars)
                    chars = []
                continue
            chars.append(line.split()[0])
    if chars:
        yield "".join(chars)


def tsv_column(path, column, spaced=False):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        index = header.index(column)
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) > index:
                text = fields[index].replace(" ", "") if spaced else fields[index]
                yield from split_sentences(text)


def sanwen(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) == 4:
                yield from split_sentences(fields[3])


def duie(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield from split_sentences(json.loads(line)["text"])


def cmrc_contexts(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    for article in data:
        for paragraph in article["paragraphs"]:
            yield from split_sentences(paragraph["context"])


def kbqa_questions(path, first, last):
    index = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("<question id="):
                index += 1
                if first <= index <= last:
                    yield line.split("\t", 1)[1].strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("ZHISHI_DATA") or "../shared/data")
    parser.add_argument("--out", default="target/corpora/pretrain-all.txt")
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    d = lambda rel: os.path.join(args.data, rel)
    train_kbqa = KBQA_QUESTIONS - KBQA_HELD_OUT
    held_out = {
        "msra test": bmes_sentences(d("ner/msra/msra_sighan2006_test.bmes")),
        "resume dev": bmes_sentences(d("ner/resume/dev.char.bmes")),
        "resume test": bmes_sentences(d("ner/resume/test.char.bmes")),
        "kbert_medical dev": tsv_column(d("ner/kbert_medical/dev.tsv"), "text_a", True),
        "kbert_medical test": tsv_column(d("ner/kbert_medical/test.tsv"), "text_a", True),
        "sanwen valid": sanwen(d("re/sanwen/valid.txt")),
        "sanwen test": sanwen(d("re/sanwen/test.txt")),
        "cmrc2018 dev contexts": cmrc_contexts(d("qa/cmrc2018/cmrc2018_dev.json")),
        "nlpcc2016 kbqa dev+test questions": kbqa_questions(
            d("kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data"), train_kbqa + 1, KBQA_QUESTIONS
        ),
        "chnsenticorp dev": tsv_column(d("cls/chnsenticorp/dev.tsv"), "text_a"),
        "chnsenticorp test": tsv_column(d("cls/chnsenticorp/test.tsv"), "text_a"),
    }
    sources = {
        "msra train": bmes_sentences(d("ner/msra/msra_sighan2006_train.bmes")),
        "resume train": bmes_sentences(d("ner/resume/train.char.bmes")),
        "kbert_medical train": tsv_column(d("ner/kbert_medical/train.tsv"), "text_a", True),
        "sanwen train": sanwen(d("re/sanwen/train.txt")),
        "duie sample": duie(d("re/duie_sample/train_data_5000.json")),
        "cmrc2018 trial contexts": cmrc_contexts(d("qa/cmrc2018/cmrc2018_trial.json")),
        "nlpcc2016 kbqa train questions": kbqa_questions(
            d("kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data"), 1, train_kbqa
        ),
        "chnsenticorp train": tsv_column(d("cls/chnsenticorp/train.tsv"), "text_a"),
    }
    held = set()
    stats = {"held_out": {}, "sources": {}}
    for name, sentences in held_out.items():
        before = len(held)
        held.update(sentences)
        stats["held_out"][name] = len(held) - before
    seen = set()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        for name, sentences in sources.items():
            s = {"sentences": 0, "kept": 0, "duplicates": 0, "held_out": 0, "characters": 0}
            for sentence in sentences:
                s["sentences"] += 1
                if sentence in held:
                    s["held_out"] += 1
                elif sentence in seen:
                    s["duplicates"] += 1
                else:
                    seen.add(sentence)
                    out.write(sentence + "\n")
                    s["kept"] += 1
                    s["characters"] += len(sentence)
            stats["sources"][name] = s
    os.replace(tmp, args.out)
    stats["lines"] = sum(s["kept"] for s in stats["sources"].values())
    stats["characters"] = sum(s["characters"] for s in stats["sources"].values())
    stats["bytes"] = os.path.getsize(args.out)
    with open(args.out + ".stats.json", "w", encoding="utf-8") as f:
        json.dump(stats, f, ensure_ascii=False, indent=1)
    json.dump(stats, sys.stderr, ensure_ascii=False, indent=1)
    print(f"\n{args.out}: {stats['lines']} lines, {stats['characters']} characters", file=sys.stderr)


if __name__ == "__main__":
    main()
