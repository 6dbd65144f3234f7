#!/usr/bin/env bash
# Fetches the public data sets the shipped configs (pipelines/*.toml) train and evaluate on,
# from their original sources, into the data root the configs read: `$ZHISHI_DATA`, else
# `data/` in this checkout (git-ignored). Each file is checked against the SHA-256 of the copy
# zhishi was measured on; nothing is written unless every file of a set arrived and matched,
# and an existing file with other contents is never replaced.
#
#   bash corpora/fetch_data.sh --list                  # the sets, sizes and licences
#   bash corpora/fetch_data.sh medical resume          # -> data/ner/kbert_medical/..., data/kg/kbert/...
#   bash corpora/fetch_data.sh --dest /srv/zhishi-data all
#   bash corpora/fetch_data.sh --mirror file:///copy medical   # a local copy laid out as OWNER/REPO/REF/PATH
#
# Needs curl and sha256sum. The licences are the sources' own (see --list and docs/data.md):
# read them before using a set beyond research.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source_base=https://raw.githubusercontent.com
dest=${ZHISHI_DATA:-$root/data}
verify=1

# set | source path under OWNER/REPO/REF | destination under the data root | sha256
manifest() {
  cat <<'EOF'
medical|autoliuweijie/K-BERT/master/datasets/medical_ner/train.tsv|ner/kbert_medical/train.tsv|31ec40b6cf6382ab9f97224248138e3c7495a5fde45e309fcda203ffb24787ca
medical|autoliuweijie/K-BERT/master/datasets/medical_ner/dev.tsv|ner/kbert_medical/dev.tsv|9f260ce487a45c45565bc15898b233868e66e628216658c44562d4f6d4151963
medical|autoliuweijie/K-BERT/master/datasets/medical_ner/test.tsv|ner/kbert_medical/test.tsv|bee99104c192d5e3c7539c2a768bda0c02c8b0d9efec3c9f9ac99046fe554f58
medical|autoliuweijie/K-BERT/master/brain/kgs/Medical.spo|kg/kbert/Medical.spo|114953e42caf018840afb778898e50e296d31bf84e7b58786253b47eff201ba5
hownet|autoliuweijie/K-BERT/master/brain/kgs/HowNet.spo|kg/kbert/HowNet.spo|a860ed1296addd40b3da8c642ea0c0683a5bf68d96985c47411bc3a9bf28db7f
resume|jiesutd/LatticeLSTM/master/ResumeNER/train.char.bmes|ner/resume/train.char.bmes|93b9bb0be5dd4730121587f9dc1378de3fbbe55cba1c575edec271f822c27be7
resume|jiesutd/LatticeLSTM/master/ResumeNER/dev.char.bmes|ner/resume/dev.char.bmes|1b0d67153e6e8543e9444936ed1b107bd843078c282533898085e1a9aa293952
resume|jiesutd/LatticeLSTM/master/ResumeNER/test.char.bmes|ner/resume/test.char.bmes|c4a9f42622819a4b59f66e184d446ebfa89b2f1dbba06e11d70675e59fe7e79b
sanwen|thunlp/Chinese_NRE/master/data/SanWen/train.txt|re/sanwen/train.txt|1b50540a3ef585956fe5006724e0e573a110863e0858fefb6e6a7a1f46369ecc
sanwen|thunlp/Chinese_NRE/master/data/SanWen/valid.txt|re/sanwen/valid.txt|64a46712fff04b8b6435d033dfb79d08bb7644289c5e9258e13d2f50d03650bc
sanwen|thunlp/Chinese_NRE/master/data/SanWen/test.txt|re/sanwen/test.txt|3e4ae94f14be46fc3e60eec432160b0a5d5427844c0bcd1ec061a33d80b383ef
sanwen|thunlp/Chinese_NRE/master/data/SanWen/relation2id.txt|re/sanwen/relation2id.txt|7e9e0208eec6ab4bc37bc6760b096c38d8f96daf2a7d5ae0aa01b4f103b0d3e3
cmrc2018|ymcui/cmrc2018/master/squad-style-data/cmrc2018_trial.json|qa/cmrc2018/cmrc2018_trial.json|f3fae95b57da8e03afb2b57467dd221417060ef4d82db13bf22fc88589f3a6f3
cmrc2018|ymcui/cmrc2018/master/squad-style-data/cmrc2018_dev.json|qa/cmrc2018/cmrc2018_dev.json|e9ff74231f05c230c6fa88b84441ee334d97234cbb610991cd94b82db00c7f1f
fb15k237|thunlp/OpenKE/OpenKE-PyTorch/benchmarks/FB15K237/entity2id.txt|kg/openke/FB15K237/entity2id.txt|e4546cfdcd0b9bd0151cc0f6ef2edee29eb2bb55a3d47e668194999c036fba0d
fb15k237|thunlp/OpenKE/OpenKE-PyTorch/benchmarks/FB15K237/relation2id.txt|kg/openke/FB15K237/relation2id.txt|fefd26d6cd5ff9d360efe5360c11bf112d019f42b3acf165a5c04aa2b66a42d9
fb15k237|thunlp/OpenKE/OpenKE-PyTorch/benchmarks/FB15K237/train2id.txt|kg/openke/FB15K237/train2id.txt|5f44223a02b39b8e398e77a787feb4f06e9ffccf1ae87047bbf38fcc8cc08bd2
fb15k237|thunlp/OpenKE/OpenKE-PyTorch/benchmarks/FB15K237/valid2id.txt|kg/openke/FB15K237/valid2id.txt|7d21e778de4369d5348f5cff23a08dc847ab5fce4b5f07c80113297d2dc60a86
fb15k237|thunlp/OpenKE/OpenKE-PyTorch/benchmarks/FB15K237/test2id.txt|kg/openke/FB15K237/test2id.txt|6027e649c1716ac9c1ef2f24672a416aa277aff3e14850ef915ac5a21df70417
EOF
}

describe() {
  cat <<'EOF'
set       what                                                   used by                                  licence
medical   K-BERT medical NER (6,919/939/755 sentences) + Medical.spo  kbert-/ernie-/distill-medical-ner.toml  MIT (K-BERT repository)
hownet    HowNet sememe triples (52,576)                          sanwen-re.toml, chnsenticorp-cls.toml     MIT (K-BERT repository)
resume    Resume NER (3,821/463/477 sentences, BMES)              resume-ner.toml                           as the Lattice-LSTM repository publishes it
sanwen    SanWen relations (17,227/1,793/2,220)                   sanwen-re.toml                            MIT (thunlp/Chinese_NRE)
cmrc2018  CMRC 2018 trial + dev (SQuAD v1 JSON)                   cmrc2018-qa.toml                          CC BY-SA 4.0
fb15k237  FB15k-237 link prediction (OpenKE ids)                  zhishi transe bench                       as OpenKE publishes it
all       every set above
Not fetchable by script (see docs/data.md): MSRA NER, ChnSentiCorp, NLPCC 2016 KBQA.
EOF
}

usage() {
  echo "usage: bash corpora/fetch_data.sh [--dest DIR] [--mirror URL] [--no-verify] SET... | --list" >&2
  exit 2
}

sets=()
while (($#)); do
  case $1 in
    --list) describe; exit 0 ;;
    --dest) [[ $# -ge 2 ]] || usage; dest=$2; shift 2 ;;
    --mirror) [[ $# -ge 2 ]] || usage; source_base=${2%/}; shift 2 ;;
    --no-verify) verify=0; shift ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) sets+=("$1"); shift ;;
  esac
done
((${#sets[@]})) || usage
known=$(manifest | cut -d'|' -f1 | sort -u)
for s in "${sets[@]}"; do
  if [[ $s == all ]]; then sets=($known); break; fi
  grep -qx "$s" <<<"$known" || { echo "unknown set '$s'; known: $(echo $known) all" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }

mkdir -p "$dest"
staging=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf -- "$staging"' EXIT

for set in "${sets[@]}"; do
  # Fetch and check every file of the set before any of it is installed.
  rows=$(manifest | awk -F'|' -v s="$set" '$1 == s')
  while IFS='|' read -r _ src rel sum; do
    mkdir -p "$staging/$set/$(dirname "$rel")"
    curl --fail --location --silent --show-error --retry 2 \
      -o "$staging/$set/$rel" "$source_base/$src" \
      || { echo "$set: cannot fetch $source_base/$src" >&2; exit 1; }
    got=$(sha256sum "$staging/$set/$rel" | cut -d' ' -f1)
    if [[ $got != "$sum" ]]; then
      if ((verify)); then
        echo "$set: $src has SHA-256 $got, expected $sum (the source changed since zhishi was measured on it); nothing of '$set' was installed (--no-verify keeps it anyway)" >&2
        exit 1
      fi
      echo "$set: $rel differs from the measured copy (kept: --no-verify)" >&2
    fi
    if [[ -e $dest/$rel ]] && ! cmp -s "$dest/$rel" "$staging/$set/$rel"; then
      echo "$set: $dest/$rel exists with other contents; move it away first (nothing was replaced)" >&2
      exit 1
    fi
  done <<<"$rows"
  while IFS='|' read -r _ src rel sum; do
    mkdir -p "$dest/$(dirname "$rel")"
    [[ -e $dest/$rel ]] || mv "$staging/$set/$rel" "$dest/$rel"
  done <<<"$rows"
  echo "$set: $(wc -l <<<"$rows") files in $dest"
done
