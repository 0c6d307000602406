"""Splitters: pure functions from :class:`Interactions` to named splits.

All splitters take a ``generator`` (a :class:`torch.Generator`) or a ``seed`` so that
the same call always gives the same split; none touches global RNG state.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from graphcf.data.interactions import Interactions

logger = logging.getLogger(__name__)


def make_generator(seed: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Generator:
    """Return ``generator`` if given, else a new CPU generator seeded with ``seed`` (default 0)."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(0 if seed is None else int(seed))


def _rank_within_user(user: Tensor, order_key: Tensor) -> Tuple[Tensor, Tensor]:
    """Sort rows by (user, order_key); return the permutation and each row's 0-based rank within its user."""
    # stable two-pass sort: by key, then by user
    p1 = torch.argsort(order_key, stable=True)
    p2 = torch.argsort(user[p1], stable=True)
    perm = p1[p2]
    u = user[perm]
    counts = torch.bincount(u)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(u)) - starts[u]
    return perm, rank


def random_split(
    inter: Interactions,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Dict[str, Interactions]:
    """Random per-user holdout by ratio.

    Each user's interactions are shuffled and cut into ``train``/``val``/``test`` by
    ``ratios`` (two ratios give ``train``/``test``). Per user, the held-out counts are
    ``floor(n * r)`` for val and test, but a user keeps at least one training
    interaction, so users with a single interaction stay entirely in train.

    Args:
        inter: all interactions.
        ratios: ``(train, test)`` or ``(train, val, test)``, summing to 1.
        generator, seed: randomness source (``generator`` wins).
    """
    if len(ratios) not in (2, 3) or abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) < 0:
        raise ValueError(f"random_split: ratios must be 2 or 3 non-negative numbers summing to 1, got {tuple(ratios)}")
    g = make_generator(seed, generator)
    perm, rank = _rank_within_user(inter.user, torch.rand(len(inter), generator=g))
    n_per_user = torch.bincount(inter.user, minlength=inter.num_users)
    n = n_per_user[inter.user[perm]].double()
    names = ["train", "test"] if len(ratios) == 2 else ["train", "val", "test"]
    n_test = torch.minimum(torch.floor(n * ratios[-1]).long(), n.long() - 1)
    n_val = torch.zeros_like(n_test)
    if len(ratios) == 3:
        n_val = torch.minimum(torch.floor(n * ratios[1]).long(), n.long() - 1 - n_test)
    # rows are in random order within each user: the first n_test are test, the next n_val val
    out: Dict[str, Interactions] = {
        "test": inter.subset(perm[rank < n_test]),
        "train": inter.subset(perm[rank >= n_test + n_val]),
    }
    if len(ratios) == 3:
        out["val"] = inter.subset(perm[(rank >= n_test) & (rank < n_test + n_val)])
    return {k: out[k] for k in names}


def leave_one_out(
    inter: Interactions,
    with_val: bool = True,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
    min_train: int = 1,
) -> Dict[str, Interactions]:
    """Temporal leave-one-out (the NCF protocol's split).

    For each user, the latest interaction (by ``timestamp``) is ``test`` and, with
    ``with_val``, the second latest is ``val``; the rest is ``train``. Ties in time are
    broken at random with ``generator``/``seed``. Users with too few interactions to
    keep ``min_train`` training rows hold out fewer items (first val, then test is
    dropped) and are logged.

    Raises:
        ValueError: if the interactions have no timestamps.
    """
    if inter.timestamp is None:
        raise ValueError("leave_one_out: interactions have no timestamp; use random_split or give timestamps")
    g = make_generator(seed, generator)
    # random order first (tie break), then stable sorts by descending time and by user:
    # within each user, rank 0 is the latest interaction
    p0 = torch.randperm(len(inter), generator=g)
    perm0 = p0[torch.argsort(-inter.timestamp[p0], stable=True)]
    p2 = torch.argsort(inter.user[perm0], stable=True)
    perm = perm0[p2]
    u = inter.user[perm]
    counts = torch.bincount(u, minlength=inter.num_users)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(u)) - starts[u]
    n = counts[u]
    n_held = torch.full_like(n, 2 if with_val else 1)
    n_held = torch.minimum(n_held, (n - min_train).clamp(min=0))
    short = int((counts[counts > 0] < (2 if with_val else 1) + min_train).sum())
    if short:
        logger.warning("leave_one_out: %d users have too few interactions to hold out %s; they hold out fewer",
                       short, "val and test" if with_val else "test")
    test_mask = (rank == 0) & (n_held >= 1)
    out = {"train": inter.subset(perm[rank >= n_held])}
    if with_val:
        out["val"] = inter.subset(perm[(rank == 1) & (n_held >= 2)])
    out["test"] = inter.subset(perm[test_mask])
    return out


def carve_validation(
    train: Interactions,
    ratio: float = 0.1,
    generator: Optional[torch.Generator] = None,
    seed: Optional[int] = None,
) -> Tuple[Interactions, Interactions]:
    """Carve a validation set out of a training file that has none.

    Per user, ``floor(n * ratio)`` random interactions (at least one for users with
    >= 2 interactions when ``ratio > 0``, never the last remaining one) move to
    validation. Returns ``(train, val)``.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"carve_validation: ratio must be in (0, 1), got {ratio}")
    g = make_generator(seed, generator)
    perm, rank = _rank_within_user(train.user, torch.rand(len(train), generator=g))
    n = torch.bincount(train.user, minlength=train.num_users)[train.user[perm]]
    k = torch.floor(n.double() * ratio).long().clamp(min=1)
    k = torch.minimum(k, n - 1)
    val_mask = rank < k
    return train.subset(perm[~val_mask]), train.subset(perm[val_mask])
