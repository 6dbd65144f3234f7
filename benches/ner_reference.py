#!/usr/bin/env python3
"""The reference side of `zhishi bench run`: a zhishi NER model's exact K-BERT inputs through
PyTorch (transformers' BertModel + linear head, f32) or ONNX Runtime (the same module exported
with torch.onnx.export, then onnxruntime.quantization.quantize_dynamic: int8 weights,
per-channel), batched and decoded exactly as zhishi's ner stage does.

    $REF_PYTHON benches/ner_reference.py --model MODEL_DIR --inputs INPUTS.jsonl \
        --impl pytorch|onnx-int8 --threads T --labels-out LABELS.jsonl [--work DIR]

MODEL_DIR is a model directory written by `zhishi train` (model.safetensors with the encoder,
`classifier.*` and `crf.*`; config.json). INPUTS.jsonl is what `zhishi bench run-arm
--dump-inputs` writes (format `zhishi-ner-inputs/1`, see src/stages/ner/dump.rs): a header
with the labels and decoding constraints, then one line per encoder window (token ids, soft
positions, the visible matrix as packed bits, the character -> token map, its document and
pipeline batch). Windows of one pipeline batch are sorted by length (stable), cut into
batches of `predict_batch`, padded; the visible matrix (padding invisible) becomes the additive
-10000 mask of every layer, positions are the soft positions; each character takes its
scores from the window where it is most central; every document is decoded by a numpy Viterbi
under the scheme's constraints (or arg-max without a CRF).

Timed ("seconds"): building the batches, the forward passes, gathering the scores and decoding
-- the model stage. Not timed: reading the inputs, loading the weights, exporting and
quantising (cached in --work), creating the session. Prints one JSON line; LABELS.jsonl gets
one line per document: its label ids.
"""
import argparse, json, os, sys, time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
import numpy as np

MASK_BIAS = -10000.0


def read_inputs(path):
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        if header.get("format") != "zhishi-ner-inputs/1":
            sys.exit(f"{path}: not a zhishi-ner-inputs/1 dump (format {header.get('format')!r})")
        windows = [json.loads(line) for line in f if line.strip()]
    return header, windows


def visible_matrix(w):
    n = len(w["input_ids"])
    if w["visible"] is None:
        return np.ones((n, n), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(w["visible"]), dtype=np.uint8))
    return bits[: n * n].reshape(n, n).astype(bool)


def batch_arrays(batch):
    """ids, positions [B, L] int64 and the additive mask [B, 1, L, L] float32."""
    b, l = len(batch), max(len(w["input_ids"]) for w in batch)
    ids = np.zeros((b, l), dtype=np.int64)
    pos = np.zeros((b, l), dtype=np.int64)
    vis = np.zeros((b, l, l), dtype=bool)
    for i, w in enumerate(batch):
        n = len(w["input_ids"])
        ids[i, :n] = w["input_ids"]
        pos[i, :n] = w["positions"]
        vis[i, :n, :n] = visible_matrix(w)
    idx = np.arange(l)
    vis[:, idx, idx] = True  # padding rows see themselves, as zhishi's batches do
    mask = np.where(vis, 0.0, MASK_BIAS).astype(np.float32)[:, None, :, :]
    return ids, pos, mask


def viterbi(em, trans, start, end, allowed, allowed_start, allowed_end):
    n, k = em.shape
    if n == 0:
        return []
    t_allowed = np.where(allowed, trans, -np.inf)
    score = np.where(allowed_start, start + em[0], -np.inf)
    back = np.zeros((n, k), dtype=np.int64)
    for t in range(1, n):
        cand = score[:, None] + t_allowed  # [from, to]
        back[t] = cand.argmax(0)
        score = cand.max(0) + em[t]
    final = np.where(allowed_end & (score > -np.inf), score + end, -np.inf)
    path = [int(final.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]


class Runner:
    """Forward passes of one implementation: emissions [B, L, K] as numpy."""

    def __init__(self, args, header):
        import torch
        from safetensors.torch import load_file
        from transformers import BertConfig, BertModel

        torch.set_num_threads(args.threads)
        self.torch = torch
        cfg = BertConfig.from_json_file(os.path.join(args.model, "config.json"))
        weights = load_file(os.path.join(args.model, "model.safetensors"))
        k = len(header["labels"])
        attn = "eager" if args.impl == "onnx-int8" else args.attn
        cfg._attn_implementation = attn
        bert = BertModel(cfg, add_pooling_layer=False)
        classifier = torch.nn.Linear(cfg.hidden_size, k)
        missing, unexpected = bert.load_state_dict(
            {n: t for n, t in weights.items() if n.startswith(("embeddings.", "encoder."))}, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing:
            sys.exit(f"{args.model}: encoder weights missing: {missing[:5]}")
        classifier.load_state_dict({"weight": weights["classifier.weight"], "bias": weights["classifier.bias"]})

        class Tagger(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert, self.classifier = bert, classifier

            def forward(self, input_ids, position_ids, mask):
                h = self.bert(input_ids=input_ids, position_ids=position_ids, attention_mask=mask).last_hidden_state
                return self.classifier(h)

        self.module = Tagger().eval()
        self.crf = {n: weights[f"crf.{n}"].float().numpy() for n in ("transitions", "start", "end")} \
            if header["crf"] else None
        self.versions = {"torch": torch.__version__, "attn": attn}
        self.session = None
        if args.impl == "onnx-int8":
            self.session = self.onnx_session(args)

    def onnx_session(self, args):
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic

        os.makedirs(args.work, exist_ok=True)
        fp32 = os.path.join(args.work, "ner-f32.onnx")
        int8 = os.path.join(args.work, "ner-int8.onnx")
        if not os.path.exists(int8):
            torch = self.torch
            ids = torch.ones((2, 8), dtype=torch.long)
            pos = torch.arange(8).repeat(2, 1)
            mask = torch.zeros((2, 1, 8, 8))
            torch.onnx.export(
                self.module, (ids, pos, mask), fp32, dynamo=False,
                input_names=["input_ids", "position_ids", "mask"], output_names=["emissions"],
                dynamic_axes={"input_ids": {0: "b", 1: "l"}, "position_ids": {0: "b", 1: "l"},
                              "mask": {0: "b", 2: "l", 3: "l"}, "emissions": {0: "b", 1: "l"}},
                opset_version=17)
            quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.versions.update(onnxruntime=ort.__version__, quantization="quantize_dynamic QInt8 per-channel")
        return ort.InferenceSession(int8, opts, providers=["CPUExecutionProvider"])

    def emissions(self, ids, pos, mask):
        if self.session is not None:
            return self.session.run(None, {"input_ids": ids, "position_ids": pos, "mask": mask})[0]
        t = self.torch
        with t.inference_mode():
            return self.module(t.from_numpy(ids), t.from_numpy(pos), t.from_numpy(mask)).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--impl", required=True, choices=["pytorch", "onnx-int8"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--labels-out")
    ap.add_argument("--work", default="target/bench-run/reference")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"],
                    help="PyTorch attention implementation (the ONNX export always uses eager)")
    args = ap.parse_args()

    t_load = time.perf_counter()
    header, windows = read_inputs(args.inputs)
    runner = Runner(args, header)
    load_seconds = time.perf_counter() - t_load
    k = len(header["labels"])
    allowed = np.array(header["allowed"], dtype=bool)
    allowed_start = np.array(header["allowed_start"], dtype=bool)
    allowed_end = np.array(header["allowed_end"], dtype=bool)
    no_o = header["no_token_o"]
    doc_chars = {}
    groups = {}
    for w in windows:
        doc_chars[w["doc"]] = w["doc_chars"]
        groups.setdefault(w["group"], []).append(w)
    n_docs = max(doc_chars) + 1 if doc_chars else 0

    forward = decode = 0.0
    tokens = padded = 0
    start = time.perf_counter()
    labels = [None] * n_docs
    for g in sorted(groups):
        group = groups[g]
        docs = sorted({w["doc"] for w in group})
        scores = {d: np.tile(np.array([no_o] + [-no_o] * (k - 1), dtype=np.float32), (doc_chars[d], 1)) for d in docs}
        central = {d: np.full(doc_chars[d], -1) for d in docs}
        order = sorted(range(len(group)), key=lambda i: len(group[i]["input_ids"]))
        for at in range(0, len(order), header["predict_batch"]):
            batch = [group[i] for i in order[at: at + header["predict_batch"]]]
            ids, pos, mask = batch_arrays(batch)
            t0 = time.perf_counter()
            em = runner.emissions(ids, pos, mask)
            forward += time.perf_counter() - t0
            tokens += sum(len(w["input_ids"]) for w in batch)
            padded += ids.size
            for b, w in enumerate(batch):
                n = len(w["char_tokens"])
                d, off = w["doc"], w["offset"]
                for c, tok in enumerate(w["char_tokens"]):
                    if tok is None:
                        continue
                    cen = min(c, n - 1 - c)
                    if cen > central[d][off + c]:
                        central[d][off + c] = cen
                        scores[d][off + c] = em[b, tok]
        t0 = time.perf_counter()
        for d in docs:
            if runner.crf is not None:
                c = runner.crf
                labels[d] = viterbi(scores[d], c["transitions"], c["start"], c["end"],
                                    allowed, allowed_start, allowed_end)
            else:
                labels[d] = [int(i) for i in scores[d].argmax(1)]
        decode += time.perf_counter() - t0
    seconds = time.perf_counter() - start

    if args.labels_out:
        with open(args.labels_out, "w") as f:
            for ids in labels:
                f.write(json.dumps(ids if ids is not None else []) + "\n")
    print(json.dumps({
        "impl": args.impl, "threads": args.threads, "docs": n_docs,
        "chars": sum(doc_chars.values()), "windows": len(windows), "tokens": tokens,
        "padded_tokens": padded, "seconds": seconds, "forward_seconds": forward,
        "decode_seconds": decode, "load_seconds": load_seconds, **runner.versions,
    }))


if __name__ == "__main__":
    main()
