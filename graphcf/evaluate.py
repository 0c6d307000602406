r"""Evaluation: chunked full ranking with masking, and the NCF "1 + 99 negatives" protocol.

Full ranking (NGCF / LightGCN protocol)
    Every user with at least one held-out interaction in the evaluated split is scored
    against *all* items; the user's items from ``mask_splits`` (training items, and
    validation items when testing) are set to :math:`-\infty`; the top-K of the rest is
    compared with the held-out set. Users are processed in chunks so that only a
    ``[chunk, I]`` score block ever exists; the hit matrix is built on the ``[chunk, K]``
    top-K indices only.

NCF protocol (He et al., 2017)
    Each test user's held-out item is ranked among ``num_negatives`` (usually 99)
    sampled items the user never interacted with; HR@K and NDCG@K follow from the rank
    of the held-out item. See :func:`ncf_protocol` for the tie convention.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data import has_split, num_users_items, split_edge_index
from graphcf.metrics import MetricAccumulator
from graphcf.nn.scorers import Scorer
from graphcf.nn.sparse import csr_row_positions
from graphcf.typing import TopK

if TYPE_CHECKING:  # pragma: no cover
    from graphcf.model import Ranker

logger = logging.getLogger(__name__)

__all__ = [
    "topk_items",
    "RankedChunk",
    "iter_ranking",
    "iter_ranking_model",
    "full_ranking",
    "full_ranking_model",
    "ncf_protocol_model",
    "default_mask_splits",
    "ncf_protocol",
    "sample_ncf_negatives",
    "ncf_evaluate",
]

#: Items to exclude, per user of a batch: a ``torch.sparse_csr`` ``[B, I]`` tensor or
#: a ``(row_ptr [B+1], col [nnz])`` pair.
Exclude = Union[Tensor, Tuple[Tensor, Tensor]]

_NEG_INF = float("-inf")


# --------------------------------------------------------------------------- helpers


class _UserItemSets(NamedTuple):
    """Deduplicated user -> items sets over the whole user universe, as sorted keys.

    ``keys`` (``user * I + item``) is sorted, so the pairs of user ``u`` are
    ``keys[row_ptr[u]:row_ptr[u + 1]]`` (a CSR without a separate column array).
    """

    row_ptr: Tensor  # [U + 1]
    keys: Tensor  # [nnz], sorted
    num_items: int

    @property
    def counts(self) -> Tensor:
        return self.row_ptr[1:] - self.row_ptr[:-1]

    @property
    def col(self) -> Tensor:
        return torch.remainder(self.keys, self.num_items)


def _sorted_unique(keys: Tensor) -> Tensor:
    """Sorted distinct values of an int64 tensor (numpy's sort on CPU: much faster than torch's)."""
    if keys.device.type == "cpu":
        srt = torch.from_numpy(np.sort(keys.numpy()))
    else:
        srt = torch.sort(keys).values
    if srt.numel() > 1:
        keep = torch.ones(srt.numel(), dtype=torch.bool, device=srt.device)
        torch.ne(srt[1:], srt[:-1], out=keep[1:])
        srt = srt[keep]
    return srt


def _in_sorted(query: Tensor, sorted_keys: Tensor) -> Tensor:
    """Elementwise ``query in sorted_keys`` (bool, shape of ``query``) by binary search."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(query, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, query).clamp_(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == query


def _user_item_sets(edge_indices: Sequence[Tensor], num_users: int, num_items: int,
                    device: torch.device) -> _UserItemSets:
    if edge_indices:
        keys = torch.cat([ei[0].long() * num_items + ei[1].long() for ei in edge_indices]).to(device)
    else:
        keys = torch.zeros(0, dtype=torch.long, device=device)
    keys = _sorted_unique(keys)
    # row_ptr[u] = first key >= u * I
    bounds = torch.arange(num_users + 1, device=device) * num_items
    return _UserItemSets(torch.searchsorted(keys, bounds), keys, num_items)


def _chunk_positions(sets: _UserItemSets, users: Tensor, first: int, last: int,
                     num_items: int, contiguous: bool) -> Tensor:
    """Flat positions ``local_row * I + item`` in a ``[len(users), I]`` block of the pairs of ``users``.

    ``users`` is sorted, ``first``/``last`` its ends. As ``key = user * I + item`` and the
    keys are sorted, the pairs of users ``first..last`` are one slice of ``sets.keys`` and,
    when the chunk's users are contiguous, their flat positions are ``key - first * I``.
    """
    lo, hi = int(sets.row_ptr[first]), int(sets.row_ptr[last + 1])
    flat = sets.keys[lo:hi] - first * num_items
    if contiguous or flat.numel() == 0:
        return flat
    rel = torch.div(flat, num_items, rounding_mode="floor")  # user - first
    local = torch.full((last - first + 1,), -1, dtype=torch.long, device=users.device)
    local[users - first] = torch.arange(users.numel(), device=users.device)
    row = local[rel]
    keep = row >= 0
    return (row * num_items + (flat - rel * num_items))[keep]


def gather_rows(row_ptr: Tensor, col: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor]:
    """Entries of CSR rows ``rows`` (vectorised): ``(local_row [nnz'], col [nnz'])``.

    ``local_row`` indexes ``rows`` (0..len(rows)-1).
    """
    local, pos = csr_row_positions(row_ptr, rows)
    return local, col[pos]


def _exclude_parts(exclude: Exclude, batch: int) -> Tuple[Tensor, Tensor]:
    if isinstance(exclude, Tensor):
        if exclude.layout != torch.sparse_csr:
            raise TypeError(f"exclude must be a sparse CSR tensor or (row_ptr, col), got layout {exclude.layout}")
        row_ptr, col = exclude.crow_indices(), exclude.col_indices()
    else:
        row_ptr, col = exclude
    if row_ptr.numel() != batch + 1:
        raise ValueError(f"exclude has {row_ptr.numel() - 1} rows, expected {batch} (one per user)")
    return row_ptr.long(), col.long()


def _mask_(scores: Tensor, local_rows: Tensor, cols: Tensor) -> None:
    """``scores[local_rows, cols] = -inf`` in place, through flat positions of the contiguous block."""
    if cols.numel():
        scores.view(-1).index_fill_(0, local_rows * scores.shape[1] + cols, _NEG_INF)


def _score_block(scorer: Scorer, user: Tensor, item: Tensor) -> Tensor:
    scores = scorer.score_all(user, item)
    if scores.shape != (user.shape[0], item.shape[0]):
        raise ValueError(
            f"{type(scorer).__name__}.score_all returned shape {tuple(scores.shape)}, "
            f"expected {(user.shape[0], item.shape[0])}"
        )
    return scores.contiguous()


# --------------------------------------------------------------------------- top-K


@torch.no_grad()
def topk_items(user_emb: Tensor, item_emb: Tensor, scorer: Scorer, k: int,
               exclude: Optional[Exclude] = None) -> TopK:
    r"""Top-``k`` items for a batch of users, excluded items set to :math:`-\infty` first.

    Args:
        user_emb: ``[B, d]`` representations of the users of the batch.
        item_emb: ``[I, d]`` representations of all items.
        scorer: gives the ``[B, I]`` scores through :meth:`Scorer.score_all`.
        k: list length, ``1 <= k <= I``.
        exclude: items never to recommend, row ``b`` for user ``b``: a sparse CSR
            ``[B, I]`` tensor (values ignored) or a ``(row_ptr [B+1], col)`` pair.

    Returns:
        :class:`~graphcf.typing.TopK` with ``indices [B, k]`` and ``scores [B, k]`` sorted
        by decreasing score. An excluded item can only appear (with score ``-inf``)
        when a user has fewer than ``k`` non-excluded items.
    """
    num_items = item_emb.shape[0]
    if not 1 <= k <= num_items:
        raise ValueError(f"topk_items: k={k} must be in 1..{num_items} (the number of items)")
    scores = _score_block(scorer, user_emb, item_emb)
    if exclude is not None:
        row_ptr, col = _exclude_parts(exclude, user_emb.shape[0])
        row_ptr, col = row_ptr.to(scores.device), col.to(scores.device)
        local, cols = gather_rows(row_ptr, col, torch.arange(user_emb.shape[0], device=scores.device))
        _mask_(scores, local, cols)
    values, indices = torch.topk(scores, k, dim=1)
    return TopK(indices=indices, scores=values)


# --------------------------------------------------------------------------- full ranking


class RankedChunk(NamedTuple):
    """One chunk of users of a full-ranking pass.

    Attributes:
        users: ``[B]`` user indices of the chunk.
        topk: their top-K lists (``indices``/``scores`` ``[B, K]``; masked items get
            ``-inf`` and are never counted as hits).
        hits: ``[B, K]`` bool, ``True`` where the ranked item is held out for the user.
        num_relevant: ``[B]`` number of distinct held-out items of each user.
    """

    users: Tensor
    topk: TopK
    hits: Tensor
    num_relevant: Tensor


def default_mask_splits(data: HeteroData, split: str) -> List[str]:
    """Splits whose items are masked when ranking for ``split``.

    ``"test"``: train, plus val when the graph has it; ``"val"`` (or any other held-out
    split): train; ``"train"``: nothing.
    """
    if split == "train":
        return []
    if split == "test" and has_split(data, "val"):
        return ["train", "val"]
    return ["train"]


def _chunk_rows(num_items: int, item_emb: Tensor, chunk_size: Optional[int], max_chunk_bytes: int,
                scorer: Optional[Scorer] = None) -> int:
    """Users per chunk: ``chunk_size``, or as many as fit ``max_chunk_bytes``.

    A user row costs ``I * max(4, element size) * pair_cost`` bytes, where the scorer's
    optional ``pair_cost`` (default 1) counts the floats its ``score_all`` materialises
    per (user, item) pair (e.g. the ``[B, I, h]`` block of an NCF MLP tower).
    """
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    return _chunk_rows_for(num_items, item_emb.element_size(), chunk_size, max_chunk_bytes,
                           scorer.pair_cost if scorer is not None else 1)


def _check_tables(user_emb: Tensor, item_emb: Tensor, data: HeteroData) -> None:
    num_users, num_items = num_users_items(data)
    if user_emb.shape[0] != num_users or item_emb.shape[0] != num_items:
        raise ValueError(
            f"embeddings are [{user_emb.shape[0]}, ...] users x [{item_emb.shape[0]}, ...] items, "
            f"but the graph has {num_users} users and {num_items} items"
        )


def _chunk_rows_for(num_items: int, element_size: int, chunk_size: Optional[int], max_chunk_bytes: int,
                    pair_cost: int = 1) -> int:
    """Users per chunk: ``chunk_size``, or as many as fit ``max_chunk_bytes`` at ``I * element_size *
    pair_cost`` bytes a user row."""
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return int(chunk_size)
    bytes_per_row = max(1, num_items) * max(4, element_size) * max(1, int(pair_cost))
    return max(1, int(max_chunk_bytes) // bytes_per_row)


@torch.no_grad()
def iter_ranking(
    user_emb: Tensor,
    item_emb: Tensor,
    scorer: Scorer,
    data: HeteroData,
    split: str = "test",
    k: int = 20,
    mask_splits: Optional[Sequence[str]] = None,
    chunk_size: Optional[int] = None,
    max_chunk_bytes: int = 256 * 2**20,
    progress: bool = False,
) -> Iterator[RankedChunk]:
    """Yield the ranked top-``k`` of every user with a held-out item in ``split``, chunk by chunk.

    The engine behind :func:`full_ranking` (same arguments, one cut-off ``k``); use it
    directly to export recommendation lists. If ``k`` exceeds the number of items, the
    lists are cut at ``I`` and ``hits`` is padded with ``False`` up to ``k``. For any model
    (trained or training-free) use :func:`iter_ranking_model` with its ranker.
    """
    from graphcf.model import FactorRanker

    _check_tables(user_emb, item_emb, data)
    ranker = FactorRanker(user_emb, item_emb, scorer)
    yield from iter_ranking_model(ranker, data, split=split, k=k, mask_splits=mask_splits, chunk_size=chunk_size,
                                  max_chunk_bytes=max_chunk_bytes, progress=progress, device=user_emb.device)


@torch.no_grad()
def iter_ranking_model(
    ranker: "Ranker",
    data: HeteroData,
    split: str = "test",
    k: int = 20,
    mask_splits: Optional[Sequence[str]] = None,
    chunk_size: Optional[int] = None,
    max_chunk_bytes: int = 256 * 2**20,
    progress: bool = False,
    device: Optional[torch.device] = None,
) -> Iterator[RankedChunk]:
    """:func:`iter_ranking` for any model: ``ranker`` (from :meth:`graphcf.model.Recommender.ranker`)
    gives each chunk's ``[B, I]`` score block; ``device`` is where the masks and hits are computed
    (default: the ranker's ``device`` attribute, or the CPU)."""
    num_users, num_items = num_users_items(data)
    if (ranker.num_users, ranker.num_items) != (num_users, num_items):
        raise ValueError(f"the model ranks {ranker.num_users} users x {ranker.num_items} items, "
                         f"but the graph has {num_users} users and {num_items} items")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if mask_splits is None:
        mask_splits = default_mask_splits(data, split)
    mask_splits = list(mask_splits)
    if split in mask_splits:
        raise ValueError(f"cannot mask the evaluated split '{split}' itself (mask_splits={mask_splits})")
    if device is None:
        device = ranker.device

    held = _user_item_sets([split_edge_index(data, split)], num_users, num_items, device)
    mask = _user_item_sets([split_edge_index(data, s) for s in mask_splits], num_users, num_items, device)
    num_relevant_all = held.counts
    eval_users = torch.nonzero(num_relevant_all > 0).flatten()
    if mask.keys.numel() and held.keys.numel():
        overlap = int(_in_sorted(held.keys, mask.keys).sum())
        if overlap:
            logger.warning(
                "%d held-out '%s' pairs also occur in masked splits %s; they count in |test| "
                "but can never be hit", overlap, split, mask_splits)

    rows = _chunk_rows_for(num_items, int(ranker.element_size), chunk_size, max_chunk_bytes,
                           ranker.pair_cost)
    k_eff = min(k, num_items)
    n_eval = int(eval_users.numel())
    num_chunks = math.ceil(n_eval / rows) if n_eval else 0
    logger.info(
        "full ranking on '%s': %d of %d users have held-out items, %d items, masking %s, "
        "top-%d, %d chunk(s) of <= %d users", split, n_eval, num_users, num_items,
        mask_splits or "nothing", k, num_chunks, rows)

    starts = range(0, n_eval, rows)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, total=num_chunks, desc=f"rank {split}", unit="chunk")
    for s in starts:
        users = eval_users[s : s + rows]
        first, last = int(users[0]), int(users[-1])
        contiguous = last - first + 1 == users.numel()
        scores = ranker.score(users)
        if scores.shape != (users.shape[0], num_items):
            raise ValueError(f"{type(ranker).__name__}.score returned shape {tuple(scores.shape)}, "
                             f"expected {(users.shape[0], num_items)}")
        scores = scores.contiguous()
        if mask.keys.numel():
            scores.view(-1).index_fill_(
                0, _chunk_positions(mask, users, first, last, num_items, contiguous), _NEG_INF)
        values, indices = torch.topk(scores, k_eff, dim=1)
        # hits, reusing the score block (no longer needed) as a scratch pad: top-K cells := 0,
        # held-out cells := 1, then read the top-K cells back; no search, no sort
        flat_top = (torch.arange(indices.shape[0], device=device).unsqueeze(1) * num_items + indices).view(-1)
        pad = scores.view(-1)
        pad.index_fill_(0, flat_top, 0.0)
        pad.index_fill_(0, _chunk_positions(held, users, first, last, num_items, contiguous), 1.0)
        hits = (pad[flat_top] == 1.0).view_as(indices) & (values != _NEG_INF)
        del scores, pad
        if k_eff < k:
            hits = torch.cat([hits, hits.new_zeros(hits.shape[0], k - k_eff)], dim=1)
        yield RankedChunk(users, TopK(indices, values), hits, num_relevant_all[users])


def full_ranking(
    user_emb: Tensor,
    item_emb: Tensor,
    scorer: Scorer,
    data: HeteroData,
    split: str = "test",
    ks: Iterable[int] = (20,),
    mask_splits: Optional[Sequence[str]] = None,
    chunk_size: Optional[int] = None,
    max_chunk_bytes: int = 256 * 2**20,
    progress: bool = False,
    metrics: Optional[Sequence[str]] = None,
) -> Dict[str, float]:
    r"""Full-ranking evaluation (all items are candidates) with masking, at several cut-offs.

    For every user :math:`u` with a non-empty held-out set :math:`T_u` in ``split``,
    all items are scored, the items of :math:`u` in ``mask_splits`` are set to
    :math:`-\infty`, and the top-:math:`\max(K)` list is compared with :math:`T_u`;
    the metrics of :mod:`graphcf.metrics` (Recall@K, capped Recall@K, NDCG@K, HR@K,
    Precision@K, MRR@K, MAP@K) are averaged over these users. Scores are computed
    for chunks of users so that a ``[chunk, I]`` block stays under ``max_chunk_bytes``
    (at least 4 bytes per score); the dense ``U x I`` matrix is never built.

    Args:
        user_emb: ``[U, d]`` all users' representations (index = user index of ``data``).
        item_emb: ``[I, d]`` all items' representations.
        scorer: a :class:`~graphcf.nn.scorers.Scorer` (its ``score_all`` is used).
        data: the graph from :func:`graphcf.data.to_heterodata`.
        split: held-out split to evaluate (``"test"``, ``"val"``).
        ks: cut-offs, evaluated in one pass (ranked once at ``max(ks)``).
        mask_splits: splits whose items are excluded from ranking; default
            :func:`default_mask_splits` (train, plus val when testing and present).
        chunk_size: users per chunk; overrides ``max_chunk_bytes`` when given.
        max_chunk_bytes: memory cap of one chunk's score block.
        progress: show a tqdm progress bar over chunks.
        metrics: metric names to compute (default: all of :data:`graphcf.metrics.METRICS`).

    Returns:
        ``{"recall@20": ..., "ndcg@20": ..., "recall_capped@20": ..., "hr@20": ...,
        "precision@20": ..., "mrr@20": ..., "map@20": ..., "num_users": evaluated users,
        "num_skipped": users of the universe with no held-out item in split}``.
    """
    from graphcf.model import FactorRanker

    _check_tables(user_emb, item_emb, data)
    return full_ranking_model(FactorRanker(user_emb, item_emb, scorer), data, split=split, ks=ks,
                              mask_splits=mask_splits, chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes,
                              progress=progress, metrics=metrics, device=user_emb.device)


def full_ranking_model(
    ranker: "Ranker",
    data: HeteroData,
    split: str = "test",
    ks: Iterable[int] = (20,),
    mask_splits: Optional[Sequence[str]] = None,
    chunk_size: Optional[int] = None,
    max_chunk_bytes: int = 256 * 2**20,
    progress: bool = False,
    metrics: Optional[Sequence[str]] = None,
    device: Optional[torch.device] = None,
) -> Dict[str, float]:
    """:func:`full_ranking` for any model, through its :class:`~graphcf.model.Ranker`
    (``model.ranker(data)``); same protocol, arguments and result."""
    acc = MetricAccumulator(ks, metrics=metrics)
    chunks = iter_ranking_model(ranker, data, split=split, k=acc.max_k, mask_splits=mask_splits,
                                chunk_size=chunk_size, max_chunk_bytes=max_chunk_bytes, progress=progress,
                                device=device)
    return _accumulate(acc, chunks, data, split)


def _accumulate(acc: MetricAccumulator, chunks: Iterable[RankedChunk], data: HeteroData, split: str) -> Dict[str, float]:
    for chunk in chunks:
        acc.update(chunk.hits, chunk.num_relevant)
    num_users, _ = num_users_items(data)
    acc.skip(num_users - acc.num_users - acc.num_skipped)
    out = acc.compute()
    logger.info("full ranking '%s': %s", split,
                ", ".join(f"{key}={val:.4f}" for key, val in out.items() if "@" in key))
    return out


# --------------------------------------------------------------------------- NCF protocol


@torch.no_grad()
def ncf_protocol(
    user_emb: Tensor,
    item_emb: Tensor,
    scorer: Scorer,
    users: Tensor,
    pos_items: Tensor,
    neg_items: Tensor,
    ks: Iterable[int] = (10,),
    max_chunk_bytes: int = 64 * 2**20,
) -> Dict[str, float]:
    r"""Leave-one-out "1 + M negatives" evaluation of NCF (He et al., 2017).

    For test row :math:`n` (user :math:`u`, held-out item :math:`p`, negatives
    :math:`j_1..j_M`) the 0-based rank of the positive is

    .. math::
        r_n = \big|\{m : s(u, j_m) > s(u, p)\}\big| + \big|\{m : s(u, j_m) = s(u, p)\}\big|

    i.e. **ties count against the positive** (pessimistic): a model that gives every
    item the same score gets :math:`r_n = M`, not 0. Then

    .. math::
        \mathrm{HR@K} = \frac{1}{N} \sum_n \mathbb{1}[r_n < K], \qquad
        \mathrm{NDCG@K} = \frac{1}{N} \sum_n \frac{\mathbb{1}[r_n < K]}{\log_2(r_n + 2)}

    Args:
        user_emb: ``[U, d]``; item_emb: ``[I, d]``.
        scorer: pairs are scored with ``scorer(user [B, d], item [B, d])``.
        users: ``[N]`` user index of each test row.
        pos_items: ``[N]`` held-out item of each row.
        neg_items: ``[N, M]`` sampled negatives of each row (see :func:`sample_ncf_negatives`).
        ks: cut-offs.
        max_chunk_bytes: memory cap of the ``[rows, M, d]`` gathered negatives of a chunk.

    Returns:
        ``{"hr@10": ..., "ndcg@10": ..., "num_users": N}`` (``num_users`` counts test rows).
    """
    users, pos_items = users.long().to(user_emb.device), pos_items.long().to(user_emb.device)
    neg_items = neg_items.long().to(user_emb.device)
    n = users.numel()
    if pos_items.shape != (n,) or neg_items.dim() != 2 or neg_items.shape[0] != n:
        raise ValueError(
            f"ncf_protocol: users [N], pos_items [N], neg_items [N, M] expected, got "
            f"{tuple(users.shape)}, {tuple(pos_items.shape)}, {tuple(neg_items.shape)}"
        )
    m, d = neg_items.shape[1], user_emb.shape[1]
    ks = tuple(sorted({int(k) for k in ks}))
    rows = max(1, int(max_chunk_bytes) // max(1, m * d * max(4, item_emb.element_size())))
    ranks = []
    for s in range(0, n, rows):
        u = user_emb[users[s : s + rows]]
        b = u.shape[0]
        pos = scorer(u, item_emb[pos_items[s : s + rows]])
        neg = scorer(u.unsqueeze(1).expand(b, m, d).reshape(b * m, d),
                     item_emb[neg_items[s : s + rows]].reshape(b * m, d)).view(b, m)
        ranks.append((neg >= pos.unsqueeze(1)).sum(dim=1))
    rank = torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long, device=user_emb.device)
    return _ncf_metrics(rank, n, ks)


def sample_ncf_negatives(
    train_edge_index: Tensor,
    test_users: Tensor,
    test_items: Tensor,
    num_items: int,
    num_negatives: int = 99,
    generator: Optional[torch.Generator] = None,
    max_rounds: int = 8,
) -> Tensor:
    """Sample ``num_negatives`` distinct negatives per test row for :func:`ncf_protocol`.

    A negative of row ``n`` (user ``u``) is never a training item of ``u`` nor a
    held-out item of ``u`` (any row of ``test_users``/``test_items`` with that user).
    Sampling is vectorised: rounds of uniform candidates for all unfinished rows, with
    forbidden / already drawn / repeated candidates rejected through ``user*I+item``
    keys; rows still unfinished after ``max_rounds`` rounds (or with few allowed items)
    are completed exactly by taking the smallest of random keys over their allowed
    items. Deterministic for a given ``generator`` state.

    Args:
        train_edge_index: ``[2, E]`` training edges (users row 0, items row 1).
        test_users: ``[N]`` user of each test row.
        test_items: ``[N]`` held-out item of each test row.
        num_items: size of the item universe ``I``.
        num_negatives: ``M`` negatives per row.
        generator: a CPU :class:`torch.Generator` for reproducibility.
        max_rounds: rejection rounds before the exact fallback.

    Returns:
        ``[N, M]`` int64 item indices (CPU), distinct within each row.

    Raises:
        ValueError: if a test user has fewer than ``M`` items that are neither training
            positives nor held out.
    """
    ei = train_edge_index.long().cpu()
    users, items = test_users.long().cpu().flatten(), test_items.long().cpu().flatten()
    n, m, ni = users.numel(), int(num_negatives), int(num_items)
    if items.numel() != n:
        raise ValueError(f"test_users ({n}) and test_items ({items.numel()}) differ in length")
    if m < 1:
        raise ValueError(f"num_negatives must be >= 1, got {m}")
    out = torch.full((n, m), -1, dtype=torch.long)
    if n == 0:
        return out
    for name, t in (("train items", ei[1]), ("test items", items)):
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= ni):
            raise ValueError(f"{name} out of range 0..{ni - 1}")
    num_users = int(max(int(users.max()), int(ei[0].max()) if ei.numel() else -1)) + 1
    forb = _user_item_sets([ei, torch.stack([users, items])], num_users, ni, torch.device("cpu"))
    avail = ni - forb.counts[users]  # allowed items per row
    bad = torch.nonzero(avail < m).flatten()
    if bad.numel():
        b0 = int(bad[0])
        raise ValueError(
            f"sample_ncf_negatives: {bad.numel()} test row(s) have fewer than {m} items that are "
            f"neither training positives nor held out (e.g. user {int(users[b0])}: "
            f"{int(avail[b0])} of {ni} items allowed)"
        )
    filled = torch.zeros(n, dtype=torch.long)
    budget = 1 << 22  # candidate entries per batch of rows
    for rnd in range(max_rounds):
        need = m - filled
        active = torch.nonzero(need > 0).flatten()
        if active.numel() == 0:
            break
        frac = (avail[active] - filled[active]).double() / ni  # P(draw is allowed and new)
        active = active[frac >= 0.05]  # rows with few allowed items go to the exact fallback
        if active.numel() == 0:
            break
        frac = (avail[active] - filled[active]).double() / ni
        width = int(torch.ceil((need[active].double() / frac).max() * 1.25)) + 8
        accepted_rows, accepted_cols = torch.nonzero(out >= 0, as_tuple=True)
        accepted = _sorted_unique(accepted_rows * ni + out[accepted_rows, accepted_cols])
        step = max(1, budget // width)
        for s in range(0, active.numel(), step):
            r = active[s : s + step]
            cand = torch.randint(0, ni, (r.numel(), width), generator=generator)
            ok = ~_in_sorted(users[r].unsqueeze(1) * ni + cand, forb.keys)
            ok &= ~_in_sorted(r.unsqueeze(1) * ni + cand, accepted)
            sv, si = torch.sort(cand, dim=1, stable=True)
            dup = torch.zeros_like(ok)
            dup.scatter_(1, si[:, 1:], sv[:, 1:] == sv[:, :-1])  # later copies of a value
            ok &= ~dup
            rank = torch.cumsum(ok, dim=1)
            take = ok & (rank <= need[r].unsqueeze(1))
            tr, tc = torch.nonzero(take, as_tuple=True)
            out[r[tr], filled[r][tr] + rank[tr, tc] - 1] = cand[tr, tc]
            filled[r] += take.sum(dim=1)
        logger.debug("sample_ncf_negatives: round %d, %d rows unfinished", rnd, int((filled < m).sum()))

    rest = torch.nonzero(filled < m).flatten()
    if rest.numel():
        logger.debug("sample_ncf_negatives: exact sampling for %d rows", rest.numel())
        step = max(1, budget // ni)
        forb_col = forb.col
        for s in range(0, rest.numel(), step):
            r = rest[s : s + step]
            keys = torch.rand((r.numel(), ni), generator=generator)
            local, cols = gather_rows(forb.row_ptr, forb_col, users[r])
            keys[local, cols] = 2.0
            sub = out[r]
            lr, lc = torch.nonzero(sub >= 0, as_tuple=True)
            keys[lr, sub[lr, lc]] = 2.0
            need = m - filled[r]
            order = torch.topk(keys, int(need.max()), dim=1, largest=False).indices
            slot = torch.arange(order.shape[1]).unsqueeze(0)
            take = slot < need.unsqueeze(1)
            tr, tc = torch.nonzero(take, as_tuple=True)
            out[r[tr], filled[r][tr] + tc] = order[tr, tc]
            filled[r] += need
    return out


@torch.no_grad()
def ncf_evaluate(
    user_emb: Tensor,
    item_emb: Tensor,
    scorer: Scorer,
    data: HeteroData,
    split: str = "test",
    ks: Iterable[int] = (10,),
    num_negatives: int = 99,
    generator: Optional[torch.Generator] = None,
) -> Dict[str, float]:
    """The NCF protocol on a split of a graph: each held-out edge ranked among its negatives.

    The negatives are ``data[INTERACTS][f"{split}_neg_items"]`` when the graph carries
    them (e.g. from an NCF ``.test.negative`` file via
    :func:`graphcf.data.loaders.load_ncf`), otherwise ``num_negatives`` are sampled
    with ``generator`` by :func:`sample_ncf_negatives`, never an item the user has in
    any split of the graph.
    """
    from graphcf.typing import INTERACTS

    held = split_edge_index(data, split)
    store = data[INTERACTS]
    key = f"{split}_neg_items"
    if key in store:
        neg = store[key]
        if neg.shape[0] != held.shape[1]:
            raise ValueError(f"ncf_evaluate: {key} has {neg.shape[0]} rows but split '{split}' has "
                             f"{held.shape[1]} edges")
    else:
        _, num_items = num_users_items(data)
        others = [split_edge_index(data, s) for s in ("train", "val", "test") if s != split and has_split(data, s)]
        known = torch.cat(others, dim=1) if others else held[:, :0]
        neg = sample_ncf_negatives(known, held[0], held[1], num_items, num_negatives, generator=generator)
    return ncf_protocol(user_emb, item_emb, scorer, held[0], held[1], neg, ks=ks)


@torch.no_grad()
def ncf_protocol_model(
    ranker: "Ranker",
    users: Tensor,
    pos_items: Tensor,
    neg_items: Tensor,
    ks: Iterable[int] = (10,),
    max_chunk_bytes: int = 64 * 2**20,
) -> Dict[str, float]:
    """:func:`ncf_protocol` for any model: row ``n``'s positive and negatives are scored together by
    ``ranker.score(users[n], [pos, neg...])``; same tie convention and result."""
    device = ranker.device
    users, pos_items, neg_items = users.long().to(device), pos_items.long().to(device), neg_items.long().to(device)
    n = users.numel()
    if pos_items.shape != (n,) or neg_items.dim() != 2 or neg_items.shape[0] != n:
        raise ValueError(
            f"ncf_protocol_model: users [N], pos_items [N], neg_items [N, M] expected, got "
            f"{tuple(users.shape)}, {tuple(pos_items.shape)}, {tuple(neg_items.shape)}"
        )
    m = neg_items.shape[1]
    rows = max(1, int(max_chunk_bytes) // max(1, (m + 1) * 4 * 64 * ranker.pair_cost))
    ranks = []
    for s in range(0, n, rows):
        items = torch.cat([pos_items[s: s + rows].unsqueeze(1), neg_items[s: s + rows]], dim=1)
        sc = ranker.score(users[s: s + rows], items)
        ranks.append((sc[:, 1:] >= sc[:, :1]).sum(dim=1))
    rank = torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long, device=device)
    return _ncf_metrics(rank, n, ks)


def _ncf_metrics(rank: Tensor, n: int, ks: Iterable[int]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for k in sorted({int(k) for k in ks}):
        hit = rank < k
        out[f"hr@{k}"] = float(hit.double().mean()) if n else math.nan
        out[f"ndcg@{k}"] = float(torch.where(hit, 1.0 / torch.log2(rank.double() + 2.0),
                                             torch.zeros((), dtype=torch.double,
                                                         device=rank.device)).mean()) if n else math.nan
    out["num_users"] = n
    return out
