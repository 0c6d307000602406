"""A synthetic implicit-feedback generator with planted structure.

Users and items are assigned to ``num_clusters`` latent clusters. Item popularity
follows a Zipf law. Each user draws a (log-normal) number of interactions; with
probability ``in_cluster`` an interaction goes to an item of the user's own cluster
(popularity-weighted within the cluster), otherwise to any item (popularity-weighted).
A collaborative model that discovers the clusters therefore clearly beats the
popularity baseline, which only sees the skew. This is the embedded default dataset
for the README's main job and for fast tests: no download needed.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import torch
from torch_geometric.data import HeteroData

from graphcf.data.build import to_heterodata
from graphcf.data.idmap import IdMap
from graphcf.data.interactions import Interactions
from graphcf.data.split import make_generator, random_split


def make_synthetic(
    num_users: int = 2000,
    num_items: int = 1000,
    num_clusters: int = 10,
    mean_degree: float = 25.0,
    min_degree: int = 5,
    in_cluster: float = 0.8,
    zipf: float = 0.8,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Tuple[Interactions, torch.Tensor, torch.Tensor]:
    """Draw interactions with planted clusters and skewed popularity.

    Args:
        num_users, num_items: universe sizes.
        num_clusters: latent clusters (users and items are assigned uniformly).
        mean_degree: mean interactions per user (log-normal, sigma 0.5), at least ``min_degree``.
        in_cluster: probability that an interaction stays in the user's cluster.
        zipf: popularity exponent; item of popularity rank ``r`` has weight ``r^-zipf``.
        generator, seed: randomness source.

    Returns:
        ``(interactions, user_cluster [U], item_cluster [I])``. Interactions are
        duplicate-free and carry increasing synthetic timestamps per user.
    """
    if not 0 <= in_cluster <= 1:
        raise ValueError(f"make_synthetic: in_cluster must be in [0, 1], got {in_cluster}")
    if num_clusters < 1 or num_items < num_clusters:
        raise ValueError(f"make_synthetic: need 1 <= num_clusters <= num_items, got {num_clusters}, {num_items}")
    g = make_generator(seed, generator)
    user_cluster = torch.randint(0, num_clusters, (num_users,), generator=g)
    item_cluster = torch.arange(num_items) % num_clusters
    item_cluster = item_cluster[torch.randperm(num_items, generator=g)]
    pop = torch.arange(1, num_items + 1, dtype=torch.double).pow(-zipf)
    pop = pop[torch.randperm(num_items, generator=g)]
    deg = torch.exp(torch.randn(num_users, generator=g, dtype=torch.double) * 0.5) * mean_degree
    deg = deg.round().long().clamp(min=min_degree, max=num_items // 2)
    # draw 1.5x the degree with replacement, deduplicate, then truncate to the degree
    draws = (deg.double() * 1.5).ceil().long()
    users = torch.repeat_interleave(torch.arange(num_users), draws)
    in_c = torch.rand(len(users), generator=g) < in_cluster
    items = torch.multinomial(pop.float(), len(users), replacement=True, generator=g)
    # per-cluster popularity-weighted draws for the in-cluster part
    w = torch.zeros(num_clusters, num_items, dtype=torch.float)
    w[item_cluster, torch.arange(num_items)] = pop.float()
    for c in range(num_clusters):
        sel = in_c & (user_cluster[users] == c)
        k = int(sel.sum())
        if k:
            items[sel] = torch.multinomial(w[c], k, replacement=True, generator=g)
    key = users * num_items + items
    # keep first occurrence of each pair, in draw order
    uniq, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((len(uniq),), len(key), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(len(key)), reduce="amin")
    keep = torch.zeros(len(key), dtype=torch.bool)
    keep[first] = True
    users, items = users[keep], items[keep]
    # truncate each user to its degree
    counts = torch.bincount(users, minlength=num_users)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(users)) - starts[users]
    sel = rank < deg[users]
    users, items, rank = users[sel], items[sel], rank[sel]
    timestamp = 1_000_000 + users * 10_000 + rank
    return Interactions(users, items, num_users, num_items, timestamp=timestamp), user_cluster, item_cluster


def synthetic_dataset(
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    **kwargs: object,
) -> Tuple[HeteroData, IdMap]:
    """A ready split synthetic dataset: :func:`make_synthetic` + :func:`random_split`.

    Returns ``(data, idmap)`` with raw ids ``0..n-1`` (identity map).
    """
    inter, _, _ = make_synthetic(seed=seed, **kwargs)  # type: ignore[arg-type]
    splits = random_split(inter, ratios, seed=seed + 1)
    return to_heterodata(splits), IdMap.identity(inter.num_users, inter.num_items)


def write_synthetic_csv(path: Union[str, "os.PathLike[str]"], seed: int = 0, **kwargs: object) -> Path:
    """Write :func:`make_synthetic` interactions as a CSV ``user_id,item_id,timestamp``
    with string raw ids (``"u17"``, ``"i42"``), as a user's own export would look."""
    inter, _, _ = make_synthetic(seed=seed, **kwargs)  # type: ignore[arg-type]
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "timestamp"])
        for u, i, t in zip(inter.user.tolist(), inter.item.tolist(), inter.timestamp.tolist()):  # type: ignore[union-attr]
            w.writerow([f"u{u}", f"i{i}", t])
    return path
