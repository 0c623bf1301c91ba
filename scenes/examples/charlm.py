"""A tiny character-level language model: your own network, trained by your own script, filmed.

This module is what a user writes for their own network: one function for the data, one for the
model.  Your training script imports both (see ``examples/train_charlm.py``), and a scene names
the same two functions, so the compute stage rebuilds the network and the evaluation data from
the run folder that script wrote::

    landscape:
      data:  {name: custom, entry: "examples.charlm:text"}
      model: {name: custom, entry: "examples.charlm:model", args: {width: 48, layers: 2, heads: 4}}

The scene's model ``args`` must be the ones the script trained with (the recorded weights only
load into a network of the same shape); the data ``args`` should be the ones the script evaluated
with (the defaults here), so the film's loss values match the losses the script printed.

What the studio needs from the two functions:

* ``text(...)`` returns ``(x, y, vocab)``: x and y int64 (N, T), y being x shifted one character
  on, and the vocabulary size.  Integer x with integer y of the same shape is scored as token
  sequences: cross-entropy over the vocabulary, averaged over all N * T positions.
* ``model(input_shape, classes, ...)`` returns an ``nn.Module`` mapping (N, T) int64 to
  (N, T, classes) logits.  The studio reads ``forward`` with ``torch.export`` and evaluates many
  weight settings a pass from its graph (docs/your-network.md, "How the grid runs your network"):
  any of torch's layers and functions will do (``nn.MultiheadAttention`` or
  ``F.scaled_dot_product_attention`` as well as the attention written out below), as long as
  ``forward`` does not branch on a tensor's values or call ``.item()``.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

#: the shipped text, relative to this file's folder (see data/README.md for its source and licence)
TEXT = "data/wonderland.txt"


def _read(file: str) -> str:
    # relative to this module, not the working directory: the compute stage and the training
    # script run from wherever the user happens to be
    path = Path(file) if Path(file).is_absolute() else Path(__file__).parent / file
    return path.read_text(encoding="utf-8")


def vocabulary(file: str = TEXT) -> str:
    """The characters of the text, sorted: character ``i`` of this string is token id ``i``.
    Decode a sequence of ids with ``"".join(vocab[i] for i in ids)``."""
    return "".join(sorted(set(_read(file))))


def text(context: int = 32, samples: int = 2048, seed: int = 0, file: str = TEXT):
    """``samples`` windows of ``context`` characters from the text -> ``(x, y, vocab)``.

    x: int64 (samples, context) token ids; y: int64 (samples, context) the character after each
    one (``y[:, :-1] == x[:, 1:]``); vocab: the number of distinct characters (an int).

    Windows start at random positions drawn from a generator seeded with ``seed`` (they overlap,
    and together cover the whole text several times over), so the same arguments always give
    the same windows: the training script and the scene get identical data.
    """
    chars = _read(file)
    vocab = sorted(set(chars))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in chars], dtype=torch.int64)
    if len(ids) < context + 2:
        raise ValueError(f"{file} has {len(ids)} characters; a window of {context} needs at least {context + 2}")
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(0, len(ids) - context, (samples,), generator=g)
    pos = start[:, None] + torch.arange(context)        # (samples, context) positions in the text
    return ids[pos], ids[pos + 1], len(vocab)


class Block(nn.Module):
    """Pre-norm Transformer block: causal self-attention, then an MLP, each with a residual."""

    def __init__(self, width: int, heads: int, context: int, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)          # nothing in eval mode, where the landscape is measured
        # a buffer, not a parameter: it is part of the saved state but never moved along a
        # direction in weight space; True where position j may attend to position i (i <= j)
        self.register_buffer("causal", torch.tril(torch.ones(context, context, dtype=torch.bool)),
                             persistent=False)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        n, t, c = h.shape
        d = c // self.heads
        q, k, v = self.qkv(h).split(c, dim=-1)
        q, k, v = (z.view(n, t, self.heads, d).transpose(1, 2) for z in (q, k, v))     # (n, heads, t, d)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d)                    # (n, heads, t, t)
        # the future hidden: each position attends to itself and the positions before it
        att = att.masked_fill(~self.causal[:t, :t], float("-inf"))
        att = self.drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(n, t, c)
        return self.drop(self.proj(y))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attention(self.ln1(h))
        return h + self.drop(self.mlp(self.ln2(h)))


class CharTransformer(nn.Module):
    """Decoder-only Transformer over characters: token + learned position embeddings, ``layers``
    blocks, a final LayerNorm and an output head tied to the token embedding."""

    def __init__(self, context: int, classes: int, width: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(classes, width)
        self.pos = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*(Block(width, heads, context, dropout) for _ in range(layers)))
        self.ln = nn.LayerNorm(width)
        # small embeddings (GPT-2's 0.02): with tied weights the initial logits are near zero, so
        # training starts at about ln(vocab) and the film starts on a plateau, not a cliff
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        h = self.tok(x) + self.pos(torch.arange(t, device=x.device))
        h = self.ln(self.blocks(h))
        return h @ self.tok.weight.t()             # tied head: (n, t, classes) logits


def model(input_shape, classes, width: int = 48, layers: int = 2, heads: int = 4, dropout: float = 0.0) -> nn.Module:
    """The model function: ``input_shape`` is one sample's shape, ``(context,)``; ``classes`` the
    vocabulary size.  Returns a :class:`CharTransformer` mapping (N, T <= context) int64 token
    ids to (N, T, classes) logits (about 60 K parameters with the defaults on the shipped text)."""
    if len(input_shape) != 1:
        raise ValueError(f"charlm.model takes token sequences (context,), not {tuple(input_shape)}")
    return CharTransformer(int(input_shape[0]), int(classes), width, layers, heads, dropout)
