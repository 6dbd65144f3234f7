#!/usr/bin/env bash
# Teacher against distilled student: test F1 (f32, int8) and one-thread pipeline speed over
# the kbert_medical test sentences in interleaved rounds (teacher, student at f32, then at
# int8, per round). Prints one JSON object per run (`zhishi run`'s summary line) to stdout.
#   benches/distill_speed.sh TEACHER_OUTPUT STUDENT_OUTPUT [ROUNDS] [UNLABELLED]
# TEACHER_OUTPUT / STUDENT_OUTPUT are the train.output_dir of the teacher's
# pipelines/kbert-medical-ner.toml run and of pipelines/distill-medical-ner.toml (their best/
# models are compared); UNLABELLED is the distillation's unlabelled text (only checked to
# exist by `zhishi eval`). Needs M3E_DIR (the teacher's training file names it) and a release
# build in target/release (or ZHISHI=path/to/zhishi).
set -euo pipefail
cd "$(dirname "$0")/.."
# The data root (as corpora/fetch_data.sh lays it out); absolute, for the configs' ${ZHISHI_DATA}.
export ZHISHI_DATA=$(realpath "${ZHISHI_DATA:-../shared/data}")
TEACHER=$1
STUDENT=$2
ROUNDS=${3:-3}
UNLABELLED=${4:-target/corpora/medical-unlabelled.txt}
Z=${ZHISHI:-target/release/zhishi}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
tail -n +2 $ZHISHI_DATA/ner/kbert_medical/test.tsv | cut -f1 | tr -d ' ' > "$OUT/test.txt"
for p in f32 int8; do
  $Z eval pipelines/kbert-medical-ner.toml --split test --precision "$p" \
    --set train.output_dir="$TEACHER" | jq -c "{model: \"teacher\", precision: \"$p\", f1, p: .precision, r: .recall}"
  $Z eval pipelines/distill-medical-ner.toml --split test --precision "$p" \
    --set teacher.model="$TEACHER/best" --set train.output_dir="$STUDENT" \
    --set distill.unlabelled="$UNLABELLED" | jq -c "{model: \"student\", precision: \"$p\", f1, p: .precision, r: .recall}"
done
for r in $(seq "$ROUNDS"); do
  for p in f32 int8; do
    for m in teacher student; do
      if [ "$m" = teacher ]; then d=$TEACHER/best; else d=$STUDENT/best; fi
      $Z run pipelines/medical-ner.toml --threads 1 --precision "$p" --set ner.model="$d" \
        --input "$OUT/test.txt" --output "$OUT/$m-$p-$r.jsonl" 2> "$OUT/err" > /dev/null
      grep '^{' "$OUT/err" | tail -1 | jq -c "{round: $r, model: \"$m\", precision: \"$p\", docs, seconds, docs_per_s}"
    done
  done
done
