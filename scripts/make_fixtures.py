#!/usr/bin/env python3
"""Generate PyTorch reference fixtures for the Swift numerics tests.

Run once from the repository root (needs torch, numpy, safetensors):

    python scripts/make_fixtures.py

Writes, for every case below, into Tests/RecurCoreTests/Fixtures/:

  NAME.safetensors     the model: float32 state_dict + "recur-lm" metadata
  NAME.expected.json   expected outputs, computed in float64 from exactly
                       those float32 weights (see README.md there)

The output is deterministic (fixed seeds), so re-running it reproduces the
same files.  The Swift tests never need PyTorch.
"""

import argparse
import copy
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "Tests", "RecurCoreTests", "Fixtures")

# Character pool for the vocabulary: includes newline, space and punctuation
# so that the JSON-encoded vocabulary exercises escaping.
CHAR_POOL = "\n .,abcdefghijklmnopqrstuvwxyz"

# name -> config.  batch_first only changes the PyTorch call layout (never the
# weights or the results); it is alternated to make sure it does not matter.
CASES = [
    ("rnn_tanh_onehot_l1", dict(cell="rnn", nonlinearity="tanh", V=7, H=5, E=0, L=1, T=9, batch_first=False)),
    ("rnn_relu_emb_l2",    dict(cell="rnn", nonlinearity="relu", V=7, H=5, E=4, L=2, T=9, batch_first=True)),
    ("lstm_onehot_l1",     dict(cell="lstm", nonlinearity="tanh", V=7, H=5, E=0, L=1, T=9, batch_first=False)),
    ("lstm_emb_l2",        dict(cell="lstm", nonlinearity="tanh", V=7, H=5, E=4, L=2, T=9, batch_first=True)),
    ("gru_onehot_l1",      dict(cell="gru", nonlinearity="tanh", V=7, H=5, E=0, L=1, T=9, batch_first=False)),
    ("gru_emb_l2",         dict(cell="gru", nonlinearity="tanh", V=7, H=5, E=4, L=2, T=9, batch_first=True)),
    ("lstm_emb_l3_h16",    dict(cell="lstm", nonlinearity="tanh", V=11, H=16, E=6, L=3, T=20, batch_first=False)),
]

BASE_SEED = 20240611


class CharLM(nn.Module):
    """embedding (optional) -> rnn -> head.  E == 0 means one-hot input."""

    def __init__(self, cell, nonlinearity, V, H, E, L, batch_first):
        super().__init__()
        self.V, self.H, self.E, self.L = V, H, E, L
        self.cell = cell
        self.batch_first = batch_first
        if E > 0:
            self.embedding = nn.Embedding(V, E)
        input_size = E if E > 0 else V
        if cell == "rnn":
            self.rnn = nn.RNN(input_size, H, num_layers=L, nonlinearity=nonlinearity,
                              bias=True, batch_first=batch_first)
        elif cell == "gru":
            self.rnn = nn.GRU(input_size, H, num_layers=L, bias=True, batch_first=batch_first)
        elif cell == "lstm":
            self.rnn = nn.LSTM(input_size, H, num_layers=L, bias=True, batch_first=batch_first)
        else:
            raise ValueError(cell)
        self.head = nn.Linear(H, V)

    def inputs(self, tokens):
        """tokens: LongTensor [T] -> x: [T, 1, D] (or [1, T, D] if batch_first)."""
        if self.E > 0:
            x = self.embedding(tokens)
        else:
            x = F.one_hot(tokens, self.V).to(self.head.weight.dtype)
        x = x.unsqueeze(1)  # [T, 1, D]
        if self.batch_first:
            x = x.transpose(0, 1)  # [1, T, D]
        return x

    def forward(self, tokens, state=None):
        """Returns (logits [T, V], top_hidden [T, H], final_state)."""
        x = self.inputs(tokens)
        out, final = self.rnn(x, state)
        if self.batch_first:
            out = out[0]
        else:
            out = out[:, 0]
        return self.head(out), out, final


def make_model(cfg, seed):
    torch.manual_seed(seed)
    m = CharLM(cfg["cell"], cfg["nonlinearity"], cfg["V"], cfg["H"], cfg["E"], cfg["L"],
               cfg["batch_first"])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in m.named_parameters():
            # Larger than PyTorch's default init so gates are not near-linear;
            # biases included, so they are nonzero.
            p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64).sub(0.5).to(p.dtype))
    return m.float()


def tolist(t):
    return t.detach().to(torch.float64).cpu().tolist()


def manual_forward(m, tokens, state):
    """Independent float64 re-implementation of the recurrences (PyTorch docs
    conventions: LSTM gate rows i,f,g,o; GRU gate rows r,z,n with
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))).  Used only as a cross-check."""
    sd = {k: v.detach().to(torch.float64) for k, v in m.state_dict().items()}
    V, H, L, E = m.V, m.H, m.L, m.E
    if E > 0:
        xs = sd["embedding.weight"][tokens]
    else:
        xs = F.one_hot(tokens, V).to(torch.float64)
    if m.cell == "lstm":
        h = [state[0][l, 0].clone() for l in range(L)] if state else [torch.zeros(H, dtype=torch.float64)] * L
        c = [state[1][l, 0].clone() for l in range(L)] if state else [torch.zeros(H, dtype=torch.float64)] * L
    else:
        h = [state[l, 0].clone() for l in range(L)] if state is not None else [torch.zeros(H, dtype=torch.float64)] * L
        c = None
    logits, tops = [], []
    for t in range(xs.shape[0]):
        inp = xs[t]
        for l in range(L):
            Wi, Wh = sd[f"rnn.weight_ih_l{l}"], sd[f"rnn.weight_hh_l{l}"]
            bi, bh = sd[f"rnn.bias_ih_l{l}"], sd[f"rnn.bias_hh_l{l}"]
            a_i, a_h = Wi @ inp + bi, Wh @ h[l] + bh
            if m.cell == "rnn":
                act = torch.tanh if m.rnn.nonlinearity == "tanh" else torch.relu
                hn = act(a_i + a_h)
            elif m.cell == "gru":
                r = torch.sigmoid(a_i[:H] + a_h[:H])
                z = torch.sigmoid(a_i[H:2 * H] + a_h[H:2 * H])
                n = torch.tanh(a_i[2 * H:] + r * a_h[2 * H:])
                hn = (1 - z) * n + z * h[l]
            else:
                a = a_i + a_h
                i = torch.sigmoid(a[:H])
                f = torch.sigmoid(a[H:2 * H])
                g = torch.tanh(a[2 * H:3 * H])
                o = torch.sigmoid(a[3 * H:])
                c[l] = f * c[l] + i * g
                hn = o * torch.tanh(c[l])
            h[l] = hn
            inp = hn
        tops.append(inp)
        logits.append(sd["head.weight"] @ inp + sd["head.bias"])
    return torch.stack(logits), torch.stack(tops), torch.stack(h), (torch.stack(c) if c else None)


def metadata(cfg, vocab):
    return {
        "format": "recur-lm",
        "format_version": "1",
        "cell": cfg["cell"],
        "nonlinearity": cfg["nonlinearity"],
        "vocab_size": str(cfg["V"]),
        "hidden_size": str(cfg["H"]),
        "num_layers": str(cfg["L"]),
        "embedding_size": str(cfg["E"]),
        "tokenizer": "char",
        "unknown": "error",
        "vocabulary": json.dumps(vocab),
        "provenance": json.dumps({"source": "scripts/make_fixtures.py"}),
    }


def state_from(cfg, h0, c0):
    """[L][H] float64 tensors -> PyTorch state of shape [L, 1, H]."""
    if cfg["cell"] == "lstm":
        return (h0.unsqueeze(1), c0.unsqueeze(1))
    return h0.unsqueeze(1)


def split_final(cfg, final):
    if cfg["cell"] == "lstm":
        return final[0][:, 0], final[1][:, 0]
    return final[:, 0], None


def build_case(name, cfg, idx, out_dir):
    seed = BASE_SEED + 1000 * idx
    V, H, L, T = cfg["V"], cfg["H"], cfg["L"], cfg["T"]
    vocab = sorted(set(CHAR_POOL))[:V]
    assert len(vocab) == V and len(set(vocab)) == V and all(len(ch) == 1 for ch in vocab)

    model32 = make_model(cfg, seed)
    sd32 = {k: v.detach().contiguous().clone() for k, v in model32.state_dict().items()}
    assert all(v.dtype == torch.float32 for v in sd32.values())

    st_path = os.path.join(out_dir, f"{name}.safetensors")
    save_file(sd32, st_path, metadata=metadata(cfg, vocab))
    os.chmod(st_path, 0o644)  # save_file creates 0600

    # Round-trip: loads back strictly into a freshly constructed module.
    loaded = load_file(st_path)
    fresh = CharLM(cfg["cell"], cfg["nonlinearity"], V, H, cfg["E"], L, cfg["batch_first"])
    fresh.load_state_dict(loaded, strict=True)
    assert set(loaded) == set(sd32)
    for k in sd32:
        assert loaded[k].dtype == torch.float32 and torch.equal(loaded[k], sd32[k]), k

    # float64 copy: exact-math answer for the float32 weights.
    model = copy.deepcopy(model32).double()
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd32[k].to(torch.float64)), k

    g = torch.Generator().manual_seed(seed + 1)
    seq = torch.randint(0, V, (T + 1,), generator=g)
    tokens, targets = seq[:T], seq[1:]

    # Run 1: zero initial state, with gradients.
    model.zero_grad(set_to_none=True)
    logits, top, final = model(tokens)
    log_probs = F.log_softmax(logits, dim=-1)
    loss = F.cross_entropy(logits, targets, reduction="mean")
    loss.backward()
    final_h, final_c = split_final(cfg, final)

    params = dict(model.named_parameters())
    assert set(params) == set(sd32), (set(params) ^ set(sd32))
    grads = {}
    for k in sd32:  # state_dict order
        gk = params[k].grad
        assert gk is not None and gk.shape == sd32[k].shape, k
        grads[k] = gk.detach().reshape(-1).tolist()  # row-major (contiguous)

    # Run 2: nonzero initial state.
    h0 = torch.rand((L, H), generator=g, dtype=torch.float64) - 0.5
    c0 = (torch.rand((L, H), generator=g, dtype=torch.float64) - 0.5) if cfg["cell"] == "lstm" else None
    with torch.no_grad():
        logits2, top2, final2 = model(tokens, state_from(cfg, h0, c0))
    final_h2, final_c2 = split_final(cfg, final2)

    # Cross-check against the independent manual recurrence.
    with torch.no_grad():
        ml, mt, mh, mc = manual_forward(model, tokens, None)
        assert torch.allclose(ml, logits, atol=1e-12, rtol=0), name
        assert torch.allclose(mt, top, atol=1e-12, rtol=0), name
        assert torch.allclose(mh, final_h, atol=1e-12, rtol=0), name
        ml2, _, mh2, mc2 = manual_forward(model, tokens, state_from(cfg, h0, c0))
        assert torch.allclose(ml2, logits2, atol=1e-12, rtol=0), name
        assert torch.allclose(mh2, final_h2, atol=1e-12, rtol=0), name
        if cfg["cell"] == "lstm":
            assert torch.allclose(mc, final_c, atol=1e-12, rtol=0), name
            assert torch.allclose(mc2, final_c2, atol=1e-12, rtol=0), name
        # top layer's final h is the last top_hidden row
        assert torch.equal(final_h[-1], top[-1])

    init = {"h0": tolist(h0)}
    if c0 is not None:
        init["c0"] = tolist(c0)
    init["logits_from_h0"] = tolist(logits2)
    init["final_h_from_h0"] = tolist(final_h2)
    if final_c2 is not None:
        init["final_c_from_h0"] = tolist(final_c2)

    expected = {
        "config": {
            "cell": cfg["cell"],
            "nonlinearity": cfg["nonlinearity"],
            "vocab_size": V,
            "hidden_size": H,
            "num_layers": L,
            "embedding_size": cfg["E"],
            "seq_len": T,
            "vocabulary": vocab,
            "seed": seed,
            "param_shapes": {k: list(v.shape) for k, v in sd32.items()},
        },
        "tokens": tokens.tolist(),
        "targets": targets.tolist(),
        "logits": tolist(logits),
        "log_probs": tolist(log_probs),
        "top_hidden": tolist(top),
        "final_h": tolist(final_h),
    }
    if final_c is not None:
        expected["final_c"] = tolist(final_c)
    expected["loss"] = float(loss.item())
    expected["grads"] = grads
    expected["initial_state_case"] = init

    js_path = os.path.join(out_dir, f"{name}.expected.json")
    with open(js_path, "w") as fh:
        json.dump(expected, fh, separators=(",", ":"))
        fh.write("\n")
    size = os.path.getsize(js_path)
    assert size < 200_000, (js_path, size)

    gnorm = math.sqrt(sum(x * x for v in grads.values() for x in v))
    print(f"{name:20s} loss={expected['loss']:.6f} (log V={math.log(V):.4f}) "
          f"|grad|={gnorm:.4f} json={size}B st={os.path.getsize(st_path)}B")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    for idx, (name, cfg) in enumerate(CASES):
        build_case(name, cfg, idx, args.out)
    keep = os.path.join(args.out, ".keep")
    if os.path.exists(keep):
        os.remove(keep)
    print(f"wrote {2 * len(CASES)} files to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
