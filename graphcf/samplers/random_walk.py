r"""Importance-based neighbourhoods from short random walks (PinSAGE, Ying et al., KDD 2018, arXiv:1806.01973).

PinSAGE does not aggregate a node's graph neighbours: it runs short random walks from each
target node and keeps the :math:`T` nodes visited most often as its neighbourhood, with the
normalised visit counts as importance weights. On the bipartite user-item graph the walks
alternate sides, so a walk from an item is item -> user -> item -> ... and the visited
*items* are the item's neighbours (user -> item -> user likewise for users):

.. math::
    c_v(t) = \#\{\text{visits of } t \text{ by walks from } v\}, \qquad
    \mathcal{N}(v) = \operatorname{top}_T\, c_v(\cdot) \setminus \{v\}, \qquad
    \alpha_{vt} = \frac{c_v(t)}{\sum_{t' \in \mathcal{N}(v)} c_v(t')}.

Each walk makes up to ``walk_length`` traversals (one traversal = two hops, back to the
same side) and stops after each traversal with probability ``restart_prob``; many such
walks from the same origin are a random walk with restart (Pixie's). The hops run in
torch-sparse's compiled random-walk kernel (``torch.ops.torch_sparse.random_walk``) on the
training edges only, so no held-out interaction ever shapes a neighbourhood.
"""
from __future__ import annotations

import logging
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from graphcf.typing import ITEM, USER

logger = logging.getLogger(__name__)

__all__ = ["ImportanceNeighborhoods", "importance_neighborhoods", "random_walk"]


class ImportanceNeighborhoods(NamedTuple):
    """Top-:math:`T` neighbourhoods of the nodes of one side of the bipartite graph.

    Attributes:
        index: ``[N, T]`` neighbour ids (same node type as the rows), ``-1`` where a node has
            fewer than ``T`` distinct visited nodes. Sorted by decreasing visit count.
        weight: ``[N, T]`` importance weights: visit counts normalised to sum to one over
            each row's neighbours (``0`` at the ``-1`` slots; a row without neighbours is all 0).
    """

    index: Tensor
    weight: Tensor

    @property
    def num_nodes(self) -> int:
        return int(self.index.shape[0])

    def edge_index(self) -> tuple:
        """``(edge_index [2, E], edge_weight [E])`` in PyG's layout: row 0 the neighbour
        (message source), row 1 the target node; the ``-1`` slots are dropped."""
        n, t = self.index.shape
        dst = torch.arange(n, device=self.index.device).repeat_interleave(t)
        src = self.index.flatten()
        keep = src >= 0
        return torch.stack([src[keep], dst[keep]]), self.weight.flatten()[keep]


def _bipartite_csr(edge_index: Tensor, num_users: int, num_items: int):
    """``(rowptr, col)`` of the symmetric homogeneous graph on ``U + I`` nodes (items offset by ``U``)."""
    u, i = edge_index[0].long(), edge_index[1].long() + num_users
    n = num_users + num_items
    row, col = torch.cat([u, i]), torch.cat([i, u])
    # torch-sparse's kernel reads out of bounds at a node without edges (it crashes): give every
    # isolated node a self-loop, so a walk from it stays put (and never counts a visit)
    isolated = (torch.bincount(row, minlength=n) == 0).nonzero().flatten()
    row, col = torch.cat([row, isolated]), torch.cat([col, isolated])
    order = torch.argsort(row * n + col)
    row, col = row[order], col[order]
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=rowptr[1:])
    return rowptr, col


def random_walk(rowptr: Tensor, col: Tensor, start: Tensor, walk_length: int,
                generator: Optional[torch.Generator] = None) -> Tensor:
    """Uniform random walks of ``walk_length`` hops from ``start``: ``[len(start), walk_length + 1]`` node ids.

    Runs torch-sparse's compiled kernel. Every node needs at least one edge in ``(rowptr, col)``
    (the kernel crashes on a node without; :func:`importance_neighborhoods` adds self-loops there). The kernel draws from torch's global RNG, so with a ``generator`` the global
    RNG is seeded from it for the call and restored afterwards (reproducible and side-effect free).
    """
    import torch_sparse  # noqa: F401  (registers torch.ops.torch_sparse)

    if start.numel() and bool(((rowptr[1:] - rowptr[:-1])[start] == 0).any()):
        raise ValueError("random_walk: a start node has no edges (the kernel would read out of bounds)")

    if generator is None:
        return torch.ops.torch_sparse.random_walk(rowptr, col, start, walk_length)
    state = torch.get_rng_state()
    try:
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return torch.ops.torch_sparse.random_walk(rowptr, col, start, walk_length)
    finally:
        torch.set_rng_state(state)


def importance_neighborhoods(edge_index: Tensor, num_users: int, num_items: int, node_type: str = ITEM,
                             num_neighbors: int = 10, num_walks: int = 50, walk_length: int = 2,
                             restart_prob: float = 0.5, generator: Optional[torch.Generator] = None,
                             chunk_size: int = 8192) -> ImportanceNeighborhoods:
    r"""PinSAGE neighbourhoods of every node of ``node_type`` (``"item"`` or ``"user"``).

    From each node, ``num_walks`` walks of at most ``walk_length`` traversals (two hops
    each, back to ``node_type``); after each traversal a walk stops with probability
    ``restart_prob``. The ``num_neighbors`` (:math:`T`) most visited nodes other than the
    origin become its neighbours, weighted by their normalised visit counts.

    Args:
        edge_index: ``[2, E]`` *training* user -> item edges.
        num_users, num_items: universe sizes.
        node_type: whose neighbourhoods: ``"item"`` (walks item -> user -> item) or ``"user"``.
        num_neighbors: :math:`T`. (default: ``10``)
        num_walks: walks per origin. (default: ``50``)
        walk_length: maximum traversals per walk. (default: ``2``)
        restart_prob: stopping probability after each traversal, in ``[0, 1)``. (default: ``0.5``)
        generator: randomness of the walks (seeded runs give identical neighbourhoods).
        chunk_size: origins per batch of walks (bounds memory: ``chunk_size * num_walks *
            walk_length`` visits at a time).

    Returns:
        :class:`ImportanceNeighborhoods` with ``[N, T]`` rows for the ``N`` nodes of ``node_type``.

    Ties in the visit counts are broken towards the smaller node id.
    """
    if node_type not in (USER, ITEM):
        raise ValueError(f"importance_neighborhoods: node_type must be {USER!r} or {ITEM!r}, got {node_type!r}")
    for name, v in (("num_neighbors", num_neighbors), ("num_walks", num_walks), ("walk_length", walk_length),
                    ("chunk_size", chunk_size)):
        if int(v) < 1:
            raise ValueError(f"importance_neighborhoods: {name} must be >= 1, got {v}")
    if not 0.0 <= restart_prob < 1.0:
        raise ValueError(f"importance_neighborhoods: restart_prob must be in [0, 1), got {restart_prob}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"importance_neighborhoods: edge_index must be [2, E], got {tuple(edge_index.shape)}")
    edge_index = edge_index.detach().cpu()
    rowptr, col = _bipartite_csr(edge_index, num_users, num_items)
    offset, n = (num_users, num_items) if node_type == ITEM else (0, num_users)
    t = int(num_neighbors)
    index = torch.full((n, t), -1, dtype=torch.long)
    weight = torch.zeros(n, t)
    for s in range(0, n, chunk_size):
        origins = torch.arange(s, min(s + chunk_size, n))
        start = (origins + offset).repeat_interleave(num_walks)
        walks = random_walk(rowptr, col, start, 2 * walk_length, generator=generator)
        visits = walks[:, 2::2] - offset  # [W, walk_length]: back on node_type after each traversal
        if restart_prob > 0:
            u = torch.rand(visits.shape, generator=generator)
            # a walk that stops after traversal k makes no later visits
            alive = torch.cumprod((u >= restart_prob).to(torch.uint8), dim=1).bool()
            alive = torch.cat([torch.ones_like(alive[:, :1]), alive[:, :-1]], dim=1)
        else:
            alive = torch.ones_like(visits, dtype=torch.bool)
        origin = origins.repeat_interleave(num_walks).unsqueeze(1).expand_as(visits)
        keep = alive & (visits != origin) & (visits >= 0) & (visits < n)
        # a dead end (a node without edges) makes the kernel stay put: never counted, as visits == origin
        key = (origin[keep] - s) * n + visits[keep]
        key, counts = torch.unique(key, return_counts=True)  # sorted by (origin, visited)
        o, v = key // n, key % n
        # rank within each origin by decreasing count, then increasing id
        order = torch.argsort(o * (counts.max() + 1 if counts.numel() else 1) + (counts.max() - counts if counts.numel()
                                                                                 else 0), stable=True)
        o, v, counts = o[order], v[order], counts[order]
        first = torch.searchsorted(o, o, right=False)
        rank = torch.arange(o.numel()) - first
        top = rank < t
        o, v, counts, rank = o[top], v[top], counts[top], rank[top]
        rows = o + s
        index[rows, rank] = v
        weight[rows, rank] = counts.float()
    total = weight.sum(dim=1, keepdim=True)
    weight = torch.where(total > 0, weight / total.clamp_min(1e-12), weight)
    logger.debug("importance neighbourhoods of %d %s nodes: mean %.1f neighbours", n, node_type,
                 float((index >= 0).sum(dim=1).float().mean()) if n else 0.0)
    return ImportanceNeighborhoods(index, weight)
