"""PyTorch side of the pretraining speed comparison (benches/pretrain_speed.sh): continued
masked-LM training of a Hugging Face BERT checkpoint with transformers' BertForMaskedLM on the
same corpus, batch size, sequence length, thread count and step count as `zhishi pretrain`.

Sequences are packed like zhishi's: consecutive corpus lines (WordPiece ids without special
tokens) joined until the next would not fit in max_len - 2, then [CLS] ... [SEP]. Masking is
BERT's token masking (15%, 80/10/10), AdamW with the same learning rate, global-norm clipping at
1.0, dropout on (train mode). A step's time covers building the batch tensors, masking, forward,
backward and the optimiser step; the first step (allocation warm-up) is timed too, as zhishi's.

Usage: $REF_PYTHON benches/mlm_speed.py MODEL_DIR CORPUS --steps 20 --batch 16 --max-len 128 \
           --threads 1 [--lr 5e-5] [--seed 42]
Prints one JSON object: {"steps", "tokens", "seconds", "tokens_per_s", "threads", ...}.
"""
import argparse
import json
import time

import torch
from transformers import BertForMaskedLM, BertTokenizerFast


def packed(tok, path, max_len, needed):
    """The first `needed` packed sequences of the corpus (ids with [CLS]/[SEP])."""
    out, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            ids = tok(line, add_special_tokens=False)["input_ids"][: max_len - 2]
            if current and len(current) + len(ids) > max_len - 2:
                out.append([tok.cls_token_id] + current + [tok.sep_token_id])
                current = []
                if len(out) == needed:
                    return out
            current = current + ids
    if current:
        out.append([tok.cls_token_id] + current + [tok.sep_token_id])
    if not out:
        raise SystemExit(f"{path}: no text")
    while len(out) < needed:  # a short corpus is cycled
        out.extend(out[: needed - len(out)])
    return out


def mask_tokens(ids, tok, generator, prob=0.15):
    """BERT's masking of a [B, L] batch: labels -100 except at the chosen positions."""
    labels = ids.clone()
    special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (ids == tok.pad_token_id)
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & ~special
    labels[~chosen] = -100
    inputs = ids.clone()
    replace = chosen & (torch.rand(ids.shape, generator=generator) < 0.8)
    inputs[replace] = tok.mask_token_id
    random = chosen & ~replace & (torch.rand(ids.shape, generator=generator) < 0.5)
    inputs[random] = torch.randint(len(tok), ids.shape, generator=generator)[random]
    return inputs, labels


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("corpus")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    generator = torch.Generator().manual_seed(a.seed)
    tok = BertTokenizerFast.from_pretrained(a.model)
    model = BertForMaskedLM.from_pretrained(a.model)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    seqs = packed(tok, a.corpus, a.max_len, a.steps * a.batch)
    tokens, seconds, losses = 0, 0.0, []
    for step in range(a.steps):
        started = time.perf_counter()
        chunk = seqs[step * a.batch : (step + 1) * a.batch]
        width = max(len(s) for s in chunk)
        ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in chunk])
        attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
        inputs, labels = mask_tokens(ids, tok, generator)
        loss = model(input_ids=inputs, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - started
        tokens += int(attention.sum())
        losses.append(float(loss.detach()))
    print(json.dumps({
        "implementation": "pytorch",
        "torch": torch.__version__,
        "threads": a.threads,
        "steps": a.steps,
        "batch": a.batch,
        "max_len": a.max_len,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))


if __name__ == "__main__":
    main()
