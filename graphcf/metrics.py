r"""Top-K ranking metrics from a boolean hit matrix.

Every function takes

* ``hits [B, K]`` (bool): ``hits[b, j]`` is ``True`` when the item ranked at
  position ``j`` (0-based; rank :math:`j + 1`) for user ``b`` is relevant, i.e. in
  the user's held-out set :math:`T_u`;
* ``num_relevant [B]`` (int): :math:`|T_u|`, the size of the held-out set (which
  may exceed ``K`` and may contain items that can never be ranked, e.g. masked ones);
* optional ``k``: evaluate at cut-off ``k <= K`` (``hits[:, :k]``); default ``K``;

and returns the per-user value ``[B]`` (float32). Users with :math:`|T_u| = 0` get
``0``; :class:`MetricAccumulator` skips (and counts) them instead of averaging zeros.

Notation below: :math:`h_j \in \{0, 1\}` is ``hits[b, j-1]`` for rank :math:`j = 1..K`,
:math:`n = |T_u|` and :math:`m = \min(K, n)`.
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = [
    "recall_at_k",
    "recall_capped_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "precision_at_k",
    "mrr_at_k",
    "map_at_k",
    "METRICS",
    "MetricAccumulator",
]


def _prep(hits: Tensor, num_relevant: Tensor, k: Optional[int]) -> Tuple[Tensor, Tensor, int]:
    if hits.dim() != 2:
        raise ValueError(f"hits must be [B, K], got shape {tuple(hits.shape)}")
    if num_relevant.shape != hits.shape[:1]:
        raise ValueError(
            f"num_relevant must be [B]={hits.shape[0]}, got shape {tuple(num_relevant.shape)}"
        )
    kk = hits.shape[1] if k is None else int(k)
    if kk < 1 or kk > hits.shape[1]:
        raise ValueError(f"k={kk} must be in 1..{hits.shape[1]} (the width of hits)")
    h = hits[:, :kk].to(torch.float32)
    n = num_relevant.to(device=hits.device, dtype=torch.float32)
    return h, n, kk


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp(min=1.0), torch.zeros_like(num))


def _discounts(k: int, device: torch.device) -> Tensor:
    """:math:`1 / \\log_2(j + 1)` for ranks :math:`j = 1..k`."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64)).to(torch.float32)


def recall_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Recall as in NGCF / LightGCN: hits over the full held-out set size.

    .. math::
        \mathrm{Recall@K} = \frac{\sum_{j=1}^{K} h_j}{n}

    Cannot reach 1 when :math:`n > K`.
    """
    h, n, _ = _prep(hits, num_relevant, k)
    return _safe_div(h.sum(1), n)


def recall_capped_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Recall with the denominator capped at K, as in Mult-VAE (Liang et al., 2018).

    .. math::
        \mathrm{Recall_{cap}@K} = \frac{\sum_{j=1}^{K} h_j}{\min(K, n)}
    """
    h, n, kk = _prep(hits, num_relevant, k)
    return _safe_div(h.sum(1), n.clamp(max=float(kk)))


def ndcg_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""NDCG with binary relevance.

    .. math::
        \mathrm{DCG@K} = \sum_{j=1}^{K} \frac{h_j}{\log_2(j + 1)}, \qquad
        \mathrm{IDCG@K} = \sum_{j=1}^{\min(K, n)} \frac{1}{\log_2(j + 1)}, \qquad
        \mathrm{NDCG@K} = \frac{\mathrm{DCG@K}}{\mathrm{IDCG@K}}

    Example: ranked list ``[rel, non, rel]``, :math:`n = 3`, :math:`K = 3`:
    :math:`(1 + 1/\log_2 4) / (1 + 1/\log_2 3 + 1/\log_2 4) \approx 0.7039`.
    """
    h, n, kk = _prep(hits, num_relevant, k)
    disc = _discounts(kk, h.device)
    dcg = h @ disc
    ideal_cum = torch.cumsum(disc, 0)
    m = n.clamp(max=float(kk)).long()
    idcg = torch.where(m > 0, ideal_cum[(m - 1).clamp(min=0)], torch.zeros_like(dcg))
    return _safe_div(dcg, idcg)


def hit_rate_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Hit rate: whether at least one relevant item is in the top K.

    .. math::
        \mathrm{HR@K} = \mathbb{1}\Big[\sum_{j=1}^{K} h_j > 0\Big]
    """
    h, n, _ = _prep(hits, num_relevant, k)
    return torch.where(n > 0, (h.sum(1) > 0).to(torch.float32), torch.zeros_like(n))


def precision_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Precision: share of the K recommended items that are relevant.

    .. math::
        \mathrm{P@K} = \frac{1}{K} \sum_{j=1}^{K} h_j
    """
    h, n, kk = _prep(hits, num_relevant, k)
    return torch.where(n > 0, h.sum(1) / kk, torch.zeros_like(n))


def mrr_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Reciprocal rank of the first relevant item within the top K (0 if none).

    .. math::
        \mathrm{MRR@K} = \begin{cases} 1 / j^\ast & \text{if } j^\ast = \min\{j \le K : h_j = 1\}
        \text{ exists} \\ 0 & \text{otherwise} \end{cases}
    """
    h, n, kk = _prep(hits, num_relevant, k)
    ranks = torch.arange(1, kk + 1, device=h.device, dtype=torch.float32)
    # the largest 1/j among the hit positions is the first hit's
    rr = (h / ranks).amax(dim=1)
    return torch.where(n > 0, rr, torch.zeros_like(n))


def map_at_k(hits: Tensor, num_relevant: Tensor, k: Optional[int] = None) -> Tensor:
    r"""Average precision at K, normalised by :math:`\min(K, n)` (the mean over users is MAP@K).

    .. math::
        \mathrm{AP@K} = \frac{1}{\min(K, n)} \sum_{j=1}^{K} h_j \, \mathrm{P@j}, \qquad
        \mathrm{P@j} = \frac{1}{j} \sum_{l=1}^{j} h_l
    """
    h, n, kk = _prep(hits, num_relevant, k)
    ranks = torch.arange(1, kk + 1, device=h.device, dtype=torch.float32)
    prec = torch.cumsum(h, dim=1) / ranks
    return _safe_div((prec * h).sum(1), n.clamp(max=float(kk)))


MetricFn = Callable[[Tensor, Tensor, Optional[int]], Tensor]

#: Name used in result keys (``f"{name}@{k}"``) -> per-user metric function.
METRICS: Dict[str, MetricFn] = {
    "recall": recall_at_k,
    "recall_capped": recall_capped_at_k,
    "ndcg": ndcg_at_k,
    "hr": hit_rate_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
}


class MetricAccumulator:
    """Streams chunks of users and averages per-user metrics at several cut-offs.

    Hits are given once at the largest cut-off ``max(ks)`` and sliced for the
    others. Users with ``num_relevant == 0`` are skipped (not averaged) and counted
    in ``num_skipped``; :meth:`skip` adds users skipped upstream (e.g. users of the
    universe with no held-out item, never passed in).

    Example::

        acc = MetricAccumulator(ks=(10, 20))
        for hits, n in chunks:          # hits [B, 20] bool, n [B]
            acc.update(hits, n)
        acc.compute()   # {"recall@10": ..., "ndcg@20": ..., "num_users": ..., "num_skipped": ...}

    Args:
        ks: cut-offs (positive ints).
        metrics: names from :data:`METRICS` to compute (default: all).
    """

    def __init__(self, ks: Iterable[int] = (20,), metrics: Optional[Sequence[str]] = None) -> None:
        self.ks: Tuple[int, ...] = tuple(sorted({int(k) for k in ks}))
        if not self.ks or self.ks[0] < 1:
            raise ValueError(f"MetricAccumulator: ks must be positive ints, got {tuple(ks)}")
        names = list(METRICS) if metrics is None else list(metrics)
        unknown = [m for m in names if m not in METRICS]
        if unknown:
            raise ValueError(f"MetricAccumulator: unknown metrics {unknown}; known: {list(METRICS)}")
        self.metrics: Tuple[str, ...] = tuple(names)
        self.reset()

    @property
    def max_k(self) -> int:
        """Width that :meth:`update` expects of ``hits``."""
        return self.ks[-1]

    def reset(self) -> None:
        """Forget everything accumulated."""
        self._sums: Dict[str, float] = {f"{m}@{k}": 0.0 for k in self.ks for m in self.metrics}
        self.num_users = 0
        self.num_skipped = 0

    def skip(self, n: int) -> None:
        """Count ``n`` users as skipped without passing them to :meth:`update`."""
        self.num_skipped += int(n)

    def update(self, hits: Tensor, num_relevant: Tensor) -> None:
        """Add one chunk: ``hits [B, >= max(ks)]`` bool, ``num_relevant [B]``."""
        if hits.dim() != 2 or hits.shape[1] < self.max_k:
            raise ValueError(
                f"MetricAccumulator.update: hits must be [B, >= {self.max_k}], got {tuple(hits.shape)}"
            )
        num_relevant = num_relevant.to(hits.device)
        keep = num_relevant > 0
        n_keep = int(keep.sum())
        self.num_skipped += int(keep.numel()) - n_keep
        if n_keep == 0:
            return
        if n_keep < keep.numel():
            hits, num_relevant = hits[keep], num_relevant[keep]
        hits = hits[:, : self.max_k]
        self.num_users += n_keep
        for k in self.ks:
            for m in self.metrics:
                self._sums[f"{m}@{k}"] += float(METRICS[m](hits, num_relevant, k).double().sum())

    def compute(self) -> Dict[str, float]:
        """Means over evaluated users (NaN when none), plus ``num_users`` and ``num_skipped``."""
        out: Dict[str, float] = {}
        for key, s in self._sums.items():
            out[key] = s / self.num_users if self.num_users else math.nan
        out["num_users"] = self.num_users
        out["num_skipped"] = self.num_skipped
        return out
