"""Negative samplers: uniform items that are never a training positive of the user."""
from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import Tensor

logger = logging.getLogger(__name__)


class UniformNegativeSampler:
    r"""Uniform negatives with rejection of the user's training positives.

    Draws :math:`j \sim \mathcal{U}\{0..I-1\}` and redraws, vectorised in rounds, every
    draw with :math:`(u, j)` in the training set. Membership is tested by binary search
    on the sorted keys :math:`u \cdot I + i` of the training edges.

    Args:
        edge_index: ``[2, E]`` training edges (users row 0, items row 1).
        num_users, num_items: universe sizes.
        max_rounds: redraw rounds before giving up (a user with almost every item as
            a positive would need very many). Default: ``100``.

    Raises:
        ValueError: at construction, if some user has every item as a positive.
    """

    def __init__(self, edge_index: Tensor, num_users: int, num_items: int, max_rounds: int = 100) -> None:
        self.num_users = int(num_users)
        self.num_items = int(num_items)
        self.max_rounds = max_rounds
        keys = torch.unique(edge_index[0].long() * self.num_items + edge_index[1].long())
        self.pos_keys = keys  # sorted by torch.unique
        deg = torch.bincount(keys // self.num_items, minlength=self.num_users)
        full = (deg >= self.num_items).nonzero().flatten()
        if len(full):
            raise ValueError(f"UniformNegativeSampler: user {int(full[0])} has every item as a positive; "
                             "no negative exists")

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Boolean mask: is ``(users[k], items[k])`` a training edge."""
        key = users.long() * self.num_items + items.long()
        pos = torch.searchsorted(self.pos_keys, key)
        pos = pos.clamp(max=max(len(self.pos_keys) - 1, 0))
        if len(self.pos_keys) == 0:
            return torch.zeros_like(key, dtype=torch.bool)
        return self.pos_keys[pos] == key

    def _draw(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        """``n`` candidate items from the proposal distribution (uniform here)."""
        return torch.randint(0, self.num_items, (n,), generator=generator)

    def sample(self, users: Tensor, num_negatives: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        """One row of ``num_negatives`` negatives per user: ``[B]`` -> ``[B]`` (if 1) or ``[B, N]``."""
        u = users.repeat_interleave(num_negatives) if num_negatives > 1 else users
        neg = self._draw(u.numel(), generator)
        bad = self.is_positive(u, neg).nonzero().flatten()
        rounds = 0
        while len(bad):
            rounds += 1
            if rounds > self.max_rounds:
                raise RuntimeError(f"UniformNegativeSampler: {len(bad)} draws still positive after "
                                   f"{self.max_rounds} rounds (users with nearly every item?)")
            neg[bad] = self._draw(bad.numel(), generator)
            bad = bad[self.is_positive(u[bad], neg[bad])]
        return neg.view(-1, num_negatives) if num_negatives > 1 else neg


class PopularityNegativeSampler(UniformNegativeSampler):
    r"""Negatives drawn with probability :math:`\propto c_j^{\alpha}` (:math:`c_j` = training count
    of item :math:`j`; word2vec's :math:`\alpha = 0.75` by default), never a training positive.

    Items with no training interaction get weight :math:`\epsilon`-small but non-zero
    (``min_weight``) so every non-positive item stays reachable.
    """

    def __init__(self, edge_index: Tensor, num_users: int, num_items: int, alpha: float = 0.75,
                 min_weight: float = 1e-3, max_rounds: int = 100) -> None:
        super().__init__(edge_index, num_users, num_items, max_rounds)
        counts = torch.bincount(edge_index[1].long(), minlength=self.num_items).double()
        w = counts.pow(alpha)
        self.weights = torch.where(counts > 0, w, torch.full_like(w, min_weight * max(float(w.max()), 1.0)))
        self.probs = (self.weights / self.weights.sum()).float()

    def _draw(self, n: int, generator: Optional[torch.Generator]) -> Tensor:
        if n == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.multinomial(self.probs, n, replacement=True, generator=generator)
