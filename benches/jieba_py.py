"""Python jieba segmentation of a corpus (one text per line), for `zhishi bench link`.

Usage: python benches/jieba_py.py CORPUS
Prints one JSON object: seconds, tokens, chars, chars_per_s, jieba version.
Same work as the Rust side: precise mode with HMM, one line at a time.
"""
import json
import sys
import time

import jieba


def main(path):
    jieba.setLogLevel(60)
    jieba.initialize()
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    chars = sum(len(line) for line in lines)
    started = time.perf_counter()
    tokens = 0
    for line in lines:
        tokens += len(jieba.lcut(line, HMM=True))
    seconds = time.perf_counter() - started
    print(json.dumps({
        "jieba_version": jieba.__version__,
        "seconds": seconds,
        "tokens": tokens,
        "chars": chars,
        "chars_per_s": chars / seconds,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
