#!/usr/bin/env python3
"""Run docs/MODEL-FORMAT.md's Python code blocks and record what they do, for the Swift tests.

Run once from the repository root, after `swift build` (needs torch, numpy and safetensors;
e.g. `python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch numpy safetensors`):

    /tmp/venv/bin/python scripts/make_doc_fixtures.py [--recur .build/debug/recur]

For each tokenizer (char, byte, word) it

1. trains a tiny model with `recur train` on samples/hamlet.txt (recur writes it);
2. runs the doc's Python blocks, in order, in one namespace, in a scratch directory holding
   that model as model.safetensors and samples/hamlet.txt as input.txt. The import blocks
   load recur's model into PyTorch; the last block exports a fresh PyTorch model (its line
   `tokenizer = "char"` set to the tokenizer at hand, torch seeded) over model.safetensors;
3. records what PyTorch computes on "To be, or not to be" (and, for byte and word models, on a
   line of non-ASCII text) with both models: the token ids, the tokens, each token's
   log-probability and the top 3 next tokens after each token.

Writes into Tests/RecurCoreTests/Fixtures/model-format-doc/: recur-TOKENIZER.safetensors (what
recur wrote), pytorch-TOKENIZER.safetensors (what the doc's export wrote) and cases.json (the
doc's blocks exactly as run, what the import block printed, and PyTorch's numbers). The Swift
tests (Tests/RecurdTests/ModelFormatDocTests.swift) check that the doc still has these blocks,
that recur loads the exported models, and that recur's numbers equal PyTorch's on all six.
"""

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO_ROOT, "docs", "MODEL-FORMAT.md")
CORPUS = os.path.join(REPO_ROOT, "samples", "hamlet.txt")
OUT = os.path.join(REPO_ROOT, "Tests", "RecurCoreTests", "Fixtures", "model-format-doc")
TEXT = "To be, or not to be"
# Byte and word models also read text beyond their corpus: multi-byte UTF-8, and for words
# letters, digits and symbols outside ASCII (unknown words become <unk>).
UNICODE_TEXT = "To be \u2014 na\u00efve caf\u00e9, \u00bd x\u00b2!\n"
TOP = 3

# The recur-written model of each tokenizer: every cell, one-hot and embedded input.
RECUR_MODELS = {
    "char": ["--cell", "lstm", "--hidden", "16", "--layers", "2", "--embedding", "8"],
    "byte": ["--cell", "gru", "--hidden", "12", "--layers", "1", "--embedding", "4"],
    "word": ["--cell", "rnn", "--nonlinearity", "relu", "--hidden", "16", "--layers", "1", "--embedding", "0"],
}


def python_blocks(path):
    """The ```python fenced blocks of a markdown file, in order, as their exact text."""
    blocks, current = [], None
    for line in open(path, encoding="utf-8").read().split("\n"):
        if current is None:
            if line == "```python":
                current = []
        elif line == "```":
            blocks.append("\n".join(current) + "\n")
            current = None
        else:
            current.append(line)
    if current is not None:
        sys.exit(f"{path}: a ```python block is not closed")
    return blocks


def display(token, tokenizer):
    """A token as recurd's events and `recur eval --json` write it (docs/PROTOCOL.md, Tokens)."""
    if tokenizer != "byte":
        return token
    b = int(token)
    return chr(b) if 0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) else f"\\x{b:02X}"


def run_model(ns, path, text):
    """Loads `path` with the doc's load_recur and runs it on `text` with the doc's encode."""
    model, vocabulary, meta = ns["load_recur"](path)
    ids = ns["encode"](text, vocabulary, meta["tokenizer"], meta["unknown"])
    with torch.no_grad():
        logits, _ = model(torch.tensor(ids).unsqueeze(1))
    return record(ids, logits, vocabulary, meta["tokenizer"], text), meta, vocabulary


def record(ids, logits, vocabulary, tokenizer, text=TEXT):
    """PyTorch's numbers for one text: logits is (T, 1, V), the prediction after each token."""
    log_probs = torch.log_softmax(logits[:, 0].double(), dim=-1)
    events = []
    for t, token_id in enumerate(ids):
        top = torch.topk(log_probs[t], TOP)
        events.append({
            "token": display(vocabulary[token_id], tokenizer),
            "logprob": None if t == 0 else float(log_probs[t - 1, token_id]),
            "next": [[display(vocabulary[int(i)], tokenizer), float(lp.exp())] for lp, i in zip(top.values, top.indices)],
        })
    return {"text": text, "ids": list(ids), "events": events}


def run_blocks(blocks, tokenizer, directory):
    """Runs the doc's blocks in `directory` as a reader would; returns the namespace after
    each block and what each printed."""
    namespace = {"__name__": "__doc__"}
    snapshots, printed = [], []
    here = os.getcwd()
    os.chdir(directory)
    try:
        for i, block in enumerate(blocks):
            if re.search(r'^tokenizer = "char"', block, flags=re.M):
                block = re.sub(r'^tokenizer = "char"', f'tokenizer = "{tokenizer}"', block, flags=re.M)
                torch.manual_seed(0)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(block, f"{DOC} block {i + 1}", "exec"), namespace)
            printed.append(out.getvalue())
            snapshots.append(dict(namespace))
    finally:
        os.chdir(here)
    return snapshots, printed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recur", default=os.path.join(REPO_ROOT, ".build", "debug", "recur"))
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()

    blocks = python_blocks(DOC)
    if len(blocks) != 4:
        sys.exit(f"{DOC} has {len(blocks)} python blocks; this script runs the 4 of the Python section")
    os.makedirs(args.out, exist_ok=True)
    cases = []
    with tempfile.TemporaryDirectory() as scratch:
        for tokenizer, options in RECUR_MODELS.items():
            directory = os.path.join(scratch, tokenizer)
            os.makedirs(directory)
            recur_model = os.path.join(args.out, f"recur-{tokenizer}.safetensors")
            trained = os.path.join(directory, "trained.safetensors")
            subprocess.run([args.recur, "train", CORPUS, "--out", trained, "--tokenizer", tokenizer, *options,
                            "--epochs", "2", "--seq", "16", "--batch", "4", "--val-fraction", "0",
                            "--seed", "1"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.copyfile(trained, recur_model)
            shutil.copy(trained, os.path.join(directory, "model.safetensors"))
            shutil.copy(CORPUS, os.path.join(directory, "input.txt"))

            snapshots, printed = run_blocks(blocks, tokenizer, directory)

            # Block 2 ran the import example on recur's model: its ids and logits are PyTorch's.
            imported = snapshots[1]
            cases.append({
                "direction": "recur-to-pytorch", "tokenizer": tokenizer,
                "model": os.path.basename(recur_model), "printed": printed[1],
                **record(imported["ids"], imported["logits"].detach(), imported["vocabulary"], tokenizer),
            })

            # Block 4 exported a PyTorch model over model.safetensors; read it back as a reader would.
            exported = os.path.join(args.out, f"pytorch-{tokenizer}.safetensors")
            shutil.copyfile(os.path.join(directory, "model.safetensors"), exported)
            ns = snapshots[3]
            texts = [TEXT] + ([UNICODE_TEXT] if tokenizer != "char" else [])
            for text in texts:
                numbers, meta, vocabulary = run_model(ns, exported, text)
                assert meta["tokenizer"] == tokenizer
                cases.append({
                    "direction": "pytorch-to-recur", "tokenizer": tokenizer,
                    "model": os.path.basename(exported), "printed": "",
                    "cell": meta["cell"], "hidden_size": int(meta["hidden_size"]),
                    "embedding_size": int(meta["embedding_size"]), "vocab_size": len(vocabulary),
                    **numbers,
                })
            if tokenizer != "char":
                numbers, _, _ = run_model(ns, recur_model, UNICODE_TEXT)
                cases.append({"direction": "recur-to-pytorch", "tokenizer": tokenizer,
                              "model": os.path.basename(recur_model), "printed": "", **numbers})
    manifest = {
        "generated_by": "scripts/make_doc_fixtures.py",
        "torch": torch.__version__,
        "doc": "docs/MODEL-FORMAT.md",
        "python_blocks": blocks,
        "cases": cases,
    }
    # One line per block and per case: small, and a re-run's diff shows what changed.
    with open(os.path.join(args.out, "cases.json"), "w", encoding="utf-8") as f:
        f.write("{\n")
        for key, value in manifest.items():
            if isinstance(value, list):
                items = ",\n".join("  " + json.dumps(v, ensure_ascii=False) for v in value)
                f.write(f" {json.dumps(key)}: [\n{items}\n ]")
            else:
                f.write(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
            f.write(",\n" if key != list(manifest)[-1] else "\n")
        f.write("}\n")
    for case in cases:
        print(f"{case['direction']:17} {case['tokenizer']:5} {case['model']:26} printed {case['printed'].strip()}")


if __name__ == "__main__":
    main()
