"""Train the tiny character-level language model of ``examples/charlm.py``, recording a run folder.

This is an ordinary PyTorch training script (data, model, Adam, a loop, a sample at the end) with
the studio's recorder added: the lines marked ``# recorder`` are all a user copies into their own
script.  The recorder saves the initial weights, then the weights at about 60 log-spaced steps
(dense early, where the loss falls fastest), with the batch loss of each, into ``--out``::

    python scenes/examples/train_charlm.py --out runs/charlm --steps 1500    # from the repository root

A scene then films that folder, naming the same data and model functions with the same model
args (``--width``/``--layers``/``--heads``; the defaults here are ``charlm.model``'s defaults).
The script trains on the windows ``charlm.text()`` returns with its default args, the data the
scene evaluates, so the losses recorded here and the film's loss surface measure the same thing.

``--tiny`` is a few-second smoke run (40 steps, a 1-layer 16-wide model) for tests.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
# this folder's parent (scenes/) for `examples.charlm` (the name a scene uses), and the repository
# root for `compute.run.recorder` (a user who installed the studio has it on the path already)
for folder in (HERE.parent, HERE.parent.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from examples.charlm import model, text, vocabulary     # noqa: E402
from compute.run.recorder import Recorder                   # noqa: E402  # recorder


def lm_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary, averaged over every position: what the studio computes."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def sample(net, vocab: str, prompt: str, length: int, context: int, seed: int) -> str:
    """Generate ``length`` characters after ``prompt`` (temperature 0.8), the last ``context``
    characters as the model's input each time."""
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([[index[c] for c in prompt if c in index]], dtype=torch.int64)
    g = torch.Generator().manual_seed(seed)
    for _ in range(length):
        logits = net(ids[:, -context:])[0, -1] / 0.8
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)
        ids = torch.cat([ids, nxt[None]], dim=1)
    return "".join(vocab[i] for i in ids[0].tolist())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/charlm", help="run folder to write (replaced if it holds a run)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the batches")
    p.add_argument("--batch", type=int, default=32, help="windows per step")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--tiny", action="store_true", help="smoke run: 40 steps, width 16, 1 layer, 2 heads")
    args = p.parse_args(argv)
    if args.tiny:
        args.steps, args.width, args.layers, args.heads = 40, 16, 1, 2

    torch.manual_seed(args.seed)
    # the scene's data: charlm.text() with its default args (context 32, 2048 windows, seed 0)
    x, y, classes = text()
    vocab = vocabulary()
    net = model(input_shape=tuple(x.shape[1:]), classes=classes,
                width=args.width, layers=args.layers, heads=args.heads)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    print(f"{sum(q.numel() for q in net.parameters()):,} parameters, {len(x)} windows of {x.shape[1]} "
          f"characters, vocabulary {classes} (ln {classes} = {torch.tensor(float(classes)).log():.2f})")

    def held_loss() -> float:                           # the first 256 windows, no gradient
        net.eval()
        with torch.no_grad():
            value = lm_loss(net(x[:256]), y[:256]).item()
        net.train()
        return value

    # recorder: saves step 0 now; step 0 has no batch, so its loss is the first-256-window loss
    rec = Recorder(args.out, net, total_steps=args.steps, snapshots=60, overwrite=True,
                   initial_loss=held_loss())
    g = torch.Generator().manual_seed(args.seed)       # the batches, independent of the weights' seed
    t0 = time.perf_counter()
    net.train()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(x), (args.batch,), generator=g)
        loss = lm_loss(net(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        rec.snapshot(step, loss=loss.item())            # recorder: saves only at its scheduled steps
        if step == 1 or step % max(1, args.steps // 10) == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss.item():.3f}  ({time.perf_counter() - t0:.1f} s)")
    rec.close()                                         # recorder: final weights, run marked complete

    net.eval()
    print(f"loss on the first 256 windows: {held_loss():.3f}  ({len(rec.steps)} snapshots in {args.out})")
    print("sample:", sample(net, vocab, "Alice ", 120, x.shape[1], args.seed).replace("\n", " "))
    print(f'scene: model: {{name: custom, entry: "examples.charlm:model", '
          f'args: {{width: {args.width}, layers: {args.layers}, heads: {args.heads}}}}}')


if __name__ == "__main__":
    main()
