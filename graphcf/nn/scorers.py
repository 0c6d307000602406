"""Scorers: turn a user representation and an item representation into a preference score.

Every scorer offers two entry points that must agree with each other:

* ``forward(user [B, d], item [B, d]) -> [B]`` scores *pairs* (row ``b`` of ``user``
  with row ``b`` of ``item``), used by pairwise / pointwise losses and by the NCF
  1 + 99 protocol;
* ``score_all(user [B, d], item [I, d]) -> [B, I]`` scores a batch of users against
  *every* item, used by full-ranking evaluation and top-K recommendation.

Two more derive from ``forward`` by default and are overridden where a batched formula
exists: ``score_many`` (each user against its own ``N`` items) and ``score_pairs`` (pairs
given as indices into unique user and item rows, the pairwise objectives' fast path).

``score_all(u, v)[b, i] == forward(u[b:b+1], v[i:i+1])[0]`` up to floating point.
``score_all`` must return a *new* tensor: full-ranking evaluation overwrites it in place
(masking with ``-inf``) to avoid a copy of the ``[B, I]`` block.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from graphcf.nn.functional import gather_dot

__all__ = ["Scorer", "DotScorer", "CosineScorer"]


def _check_pair(user: Tensor, item: Tensor) -> None:
    if user.shape != item.shape or user.dim() != 2:
        raise ValueError(
            f"pair scoring needs user and item of equal shape [B, d], got "
            f"{tuple(user.shape)} and {tuple(item.shape)}"
        )


def _check_all(user: Tensor, item: Tensor) -> None:
    if user.dim() != 2 or item.dim() != 2 or user.shape[1] != item.shape[1]:
        raise ValueError(
            f"score_all needs user [B, d] and item [I, d] with the same d, got "
            f"{tuple(user.shape)} and {tuple(item.shape)}"
        )


def _check_index(user: Tensor, item: Tensor, user_index: Tensor, item_index: Tensor) -> None:
    if user.dim() != 2 or item.dim() != 2 or user_index.dim() != 1 or item_index.dim() != 2 \
            or item_index.shape[0] != user_index.shape[0]:
        raise ValueError(
            f"score_pairs needs user [Nu, d], item [Ni, d], user_index [R] and item_index [R, M], got "
            f"{tuple(user.shape)}, {tuple(item.shape)}, {tuple(user_index.shape)} and {tuple(item_index.shape)}"
        )


def _check_many(user: Tensor, items: Tensor) -> None:
    if user.dim() != 2 or items.dim() != 3 or items.shape[0] != user.shape[0] or items.shape[2] != user.shape[1]:
        raise ValueError(
            f"score_many needs user [B, d] and items [B, N, d], got "
            f"{tuple(user.shape)} and {tuple(items.shape)}"
        )


class Scorer(torch.nn.Module):
    """Base class of all scorers.

    Subclasses implement :meth:`forward`; they should override :meth:`score_all` with
    a batched formula (the default broadcasts every user against every item through
    :meth:`forward`, which needs ``B * I * d`` memory and is only a fallback).

    Attributes:
        pair_cost: floats :meth:`score_all` materialises per (user, item) pair (``1``: only the
            ``[B, I]`` block); the evaluators size their user chunks by it.
    """

    pair_cost: int = 1

    def forward(self, user: Tensor, item: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Score pairs: ``user [B, d]``, ``item [B, d]`` -> ``[B]``."""
        raise NotImplementedError

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """Score every user of the batch against every item: ``[B, d] x [I, d] -> [B, I]``."""
        _check_all(user, item)
        b, i = user.shape[0], item.shape[0]
        u = user.unsqueeze(1).expand(b, i, user.shape[1]).reshape(b * i, -1)
        v = item.unsqueeze(0).expand(b, i, item.shape[1]).reshape(b * i, -1)
        return self.forward(u, v).view(b, i)

    def score_many(self, user: Tensor, items: Tensor) -> Tensor:
        """Score each user against its own ``N`` items: ``[B, d] x [B, N, d] -> [B, N]``.

        Used for the ``N`` negatives per positive of pairwise losses. The default repeats
        each user ``N`` times through :meth:`forward`; subclasses override it with a
        batched formula.
        """
        _check_many(user, items)
        b, n, d = items.shape
        return self.forward(user.repeat_interleave(n, 0), items.reshape(b * n, d)).view(b, n)

    def score_pairs(self, user: Tensor, item: Tensor, user_index: Tensor, item_index: Tensor) -> Tensor:
        """Score pairs given by indices into rows: ``user [Nu, d]``, ``item [Ni, d]``, ``user_index [R]``,
        ``item_index [R, M]`` -> ``[R, M]``, equal to ``score_many(user[user_index], item[item_index])``.

        The pairwise objectives embed a batch's *unique* users and items once and score its
        ``R`` rows of ``M`` pairs through these indices. The default gathers and calls
        :meth:`score_many`; a scorer with a formula that never builds the ``[R, M, d]`` rows
        overrides it (:class:`DotScorer`).
        """
        _check_index(user, item, user_index, item_index)
        return self.score_many(user[user_index], item[item_index])


class DotScorer(Scorer):
    r"""Inner product, the scorer of MF-BPR, NGCF, LightGCN and most graph CF models.

    .. math::
        s(u, i) = \mathbf{e}_u^\top \mathbf{e}_i = \sum_{k=1}^{d} e_{u,k}\, e_{i,k}

    :meth:`score_all` is the matrix product :math:`S = E_U E_I^\top` (``user @ item.T``).
    """

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pair scores :math:`\\langle e_u, e_i \\rangle`: ``[B, d], [B, d] -> [B]``."""
        _check_pair(user, item)
        return (user * item).sum(dim=-1)

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """All-item scores ``user @ item.T``: ``[B, d], [I, d] -> [B, I]``."""
        _check_all(user, item)
        return user @ item.t()

    def score_many(self, user: Tensor, items: Tensor) -> Tensor:
        """``[B, d] x [B, N, d] -> [B, N]`` as one batched matrix product (no repeated users)."""
        _check_many(user, items)
        return torch.bmm(items, user.unsqueeze(2)).squeeze(2)

    def score_pairs(self, user: Tensor, item: Tensor, user_index: Tensor, item_index: Tensor) -> Tensor:
        """``[R, M]`` inner products of indexed rows by :func:`~graphcf.nn.functional.gather_dot`,
        in bounded chunks, without the ``[R, M, d]`` gathered rows or their gradient."""
        _check_index(user, item, user_index, item_index)
        return gather_dot(user, item, user_index, item_index)


class CosineScorer(Scorer):
    r"""Cosine similarity, optionally divided by a temperature :math:`\tau`.

    .. math::
        s(u, i) = \frac{1}{\tau}\,
        \frac{\mathbf{e}_u^\top \mathbf{e}_i}{\max(\lVert \mathbf{e}_u \rVert_2, \epsilon)\,
        \max(\lVert \mathbf{e}_i \rVert_2, \epsilon)}

    Args:
        temperature: :math:`\tau > 0` (``1.0`` gives plain cosine in :math:`[-1, 1]`).
        eps: :math:`\epsilon`, guards the normalisation of zero vectors (their score is 0).
    """

    def __init__(self, temperature: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"CosineScorer: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.eps = float(eps)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, eps={self.eps}"

    def _normalize(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=-1, eps=self.eps)

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pair cosine scores ``[B, d], [B, d] -> [B]``."""
        _check_pair(user, item)
        s = (self._normalize(user) * self._normalize(item)).sum(dim=-1)
        return s if self.temperature == 1.0 else s / self.temperature

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """All-item cosine scores ``[B, d], [I, d] -> [B, I]``."""
        _check_all(user, item)
        s = self._normalize(user) @ self._normalize(item).t()
        return s if self.temperature == 1.0 else s.div_(self.temperature)

    def score_many(self, user: Tensor, items: Tensor) -> Tensor:
        """``[B, d] x [B, N, d] -> [B, N]`` cosine scores as one batched matrix product."""
        _check_many(user, items)
        s = torch.bmm(self._normalize(items), self._normalize(user).unsqueeze(2)).squeeze(2)
        return s if self.temperature == 1.0 else s / self.temperature
