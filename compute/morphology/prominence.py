"""Every local minimum of a loss grid and its prominence: how far the loss must rise from it before
lower ground is reachable (the sublevel sets' merge tree, with the elder rule).  NumPy only; the
figures built on it (``LocalMinima``) are in grid.py."""
from __future__ import annotations

import math

import numpy as np


#: offsets of the 8-neighbourhood
_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def prominences(loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every local minimum of the grid and its prominence (see :class:`LocalMinima`).
    -> (flat indices of the minima, prominences), in no particular order.

    The classic descending flood (the sublevel sets' merge tree, with the elder rule) in two
    vectorized steps and a small union-find:

    1. Every finite node points to its lowest 8-neighbour if that is lower (in the tie-broken
       order), else to itself; pointer jumping gives each node the minimum it descends to.  Those
       descent basins partition the finite nodes.
    2. Between two adjacent basins the lowest crossing is the least, over 8-adjacent node pairs
       across their border, of the higher node of the pair.  Any path from one minimum to another
       crosses borders no lower than these, and the descent paths climb to any border node without
       exceeding it, so the least highest point of a path between minima in the basin graph
       equals the one in the grid.
    3. Kruskal over the basin graph by increasing crossing: when two components meet at a
       crossing node s, the one whose minimum is higher dies there, with prominence
       L(s) - L(its minimum).  Those that never die have infinite prominence.

    Cost: a few passes over the grid plus a Python union-find over the pairs of adjacent basins:
    a 1000 x 1000 grid of a bowl with ripples takes about 0.2 s, one of white noise (110,000
    minima) about 3 s."""
    L = np.asarray(loss, dtype=np.float64)
    rank, order, label, roots = _descent_basins(L)
    prom = {int(r): math.inf for r in roots}
    lu, lv, w = _lowest_crossings(L, rank, label)
    if len(w):
        _elder_rule(prom, L.reshape(-1), rank, order, lu, lv, w)
    idx = np.fromiter(prom.keys(), dtype=np.int64, count=len(prom))
    return idx, np.fromiter(prom.values(), dtype=np.float64, count=len(prom))


def _descent_basins(L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 1 of :func:`prominences`: each node's rank in the tie-broken order (holes above every
    node), the order itself, the minimum each finite node descends to, and the minima."""
    ny, nx = L.shape
    n = L.size
    finite = np.isfinite(L).reshape(-1)
    order = np.argsort(np.where(finite, L.reshape(-1), np.inf), kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    big = n                                                     # above every rank: holes and padding
    rank = np.where(finite, rank, big)
    R = np.full((ny + 2, nx + 2), big, dtype=np.int64)
    R[1:-1, 1:-1] = rank.reshape(ny, nx)
    flat = np.arange(n, dtype=np.int64).reshape(ny, nx)
    best = rank.reshape(ny, nx).copy()
    parent = flat.copy()
    for dj, di in _NEIGHBOURS:
        nb = R[1 + dj:1 + dj + ny, 1 + di:1 + di + nx]
        lower = nb < best
        best = np.where(lower, nb, best)
        parent = np.where(lower, flat + dj * nx + di, parent)
    parent = parent.reshape(-1)
    while True:                                                 # pointer jumping
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    roots = np.flatnonzero(finite & (parent == np.arange(n)))
    return rank, order, parent, roots


def _lowest_crossings(L: np.ndarray, rank: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, ...]:
    """Step 2 of :func:`prominences`: for each pair of adjacent basins (their minima ``lu`` < ``lv``),
    the rank ``w`` of their lowest crossing, one row a pair."""
    ny, nx = L.shape
    n = L.size
    finite = np.isfinite(L).reshape(-1)
    flat = np.arange(n, dtype=np.int64).reshape(ny, nx)
    us, vs, ws = [], [], []
    for dj, di in ((0, 1), (1, 0), (1, 1), (1, -1)):
        j0, j1 = 0, ny - dj
        i0, i1 = max(0, -di), nx - max(0, di)
        u = flat[j0:j1, i0:i1].reshape(-1)
        v = u + dj * nx + di
        ok = finite[u] & finite[v] & (label[u] != label[v])
        u, v = u[ok], v[ok]
        us.append(np.minimum(label[u], label[v]))
        vs.append(np.maximum(label[u], label[v]))
        ws.append(np.maximum(rank[u], rank[v]))
    lu, lv, w = np.concatenate(us), np.concatenate(vs), np.concatenate(ws)
    if not len(w):
        return lu, lv, w
    key = lu * n + lv
    by = np.lexsort((w, key))
    key, lu, lv, w = key[by], lu[by], lv[by], w[by]
    head = np.ones(len(key), dtype=bool)
    head[1:] = key[1:] != key[:-1]
    return lu[head], lv[head], w[head]


def _elder_rule(prom: dict, Lf: np.ndarray, rank: np.ndarray, order: np.ndarray, lu: np.ndarray,
                lv: np.ndarray, w: np.ndarray) -> None:
    """Step 3 of :func:`prominences`: Kruskal over the basin graph by increasing crossing; where two
    components meet, the younger (higher) minimum dies with its prominence, set in ``prom``.  A
    component is named by its lowest minimum."""
    up: dict[int, int] = {}

    def find(x: int) -> int:
        while up.get(x, x) != x:
            nxt = up.get(up[x], up[x])
            up[x] = nxt
            x = nxt
        return x

    by = np.argsort(w, kind="stable")
    for u, v, s in zip(lu[by].tolist(), lv[by].tolist(), w[by].tolist()):
        ru, rv = find(u), find(v)
        if ru == rv:
            continue
        young, old = (ru, rv) if rank[ru] > rank[rv] else (rv, ru)
        prom[young] = float(Lf[order[s]] - Lf[young])
        up[young] = old
