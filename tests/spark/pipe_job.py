"""Run a zhishi pipeline under Apache Spark (local mode) with RDD.pipe.

    python pipe_job.py ZHISHI_BIN PIPELINE.toml INPUT.txt OUTPUT.jsonl PARTITIONS

Each partition's lines are piped through `zhishi run PIPELINE --input - --output -`; the
partitions' outputs are collected in partition order, so OUTPUT equals a single-machine
`zhishi run` over INPUT line for line.
"""
import shlex
import sys

from pyspark import SparkConf, SparkContext


def main() -> None:
    zhishi, pipeline, input_path, output_path, partitions = sys.argv[1:6]
    conf = (
        SparkConf()
        .setMaster("local[2]")
        .setAppName("zhishi-pipe")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.host", "127.0.0.1")
        .set("spark.driver.bindAddress", "127.0.0.1")
    )
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        lines = sc.textFile(input_path, minPartitions=int(partitions))
        command = shlex.join(
            [zhishi, "run", pipeline, "--input", "-", "--output", "-", "--errors", "/dev/null"]
        )
        docs = lines.pipe(command, env={"RUST_LOG": "error"}, checkCode=True).collect()
        print(f"partitions={lines.getNumPartitions()} docs={len(docs)}", file=sys.stderr)
    finally:
        sc.stop()
    with open(output_path, "w", encoding="utf-8") as out:
        for doc in docs:
            out.write(doc + "\n")


if __name__ == "__main__":
    main()
