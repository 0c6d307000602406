r"""Personalised-PageRank hard negatives (PinSAGE, Ying et al., KDD 2018, arXiv:1806.01973).

PinSAGE's curriculum adds *hard* negatives: items related to the query, but not as related as the
positives. They rank all items by personalised PageRank (PPR) from the query and draw negatives
uniformly among the items ranked in a band, 2000th to 5000th in the paper. Here the query is a user
of the bipartite training graph, and the user's training positives are never negatives.

The walk. From user :math:`u` a random walk with restart probability :math:`\alpha` moves
user :math:`\to` uniform random item of the user :math:`\to` uniform random user of the item
:math:`\to \dots`, and at every step returns to :math:`u` with probability :math:`\alpha`. With the
binary interaction matrix :math:`\mathbf{R}` (``[U, I]``) and the degrees
:math:`\mathbf{D}_U = \operatorname{diag}(\mathbf{R}\mathbf{1})`,
:math:`\mathbf{D}_I = \operatorname{diag}(\mathbf{R}^\top\mathbf{1})`, the two half steps are
:math:`\mathbf{P}_{UI} = \mathbf{D}_U^{-1}\mathbf{R}` and :math:`\mathbf{P}_{IU} = \mathbf{D}_I^{-1}\mathbf{R}^\top`.
The stationary distribution of the walk on the :math:`(U + I)` nodes is

.. math::
    \boldsymbol{\pi} = \alpha \sum_{k \ge 0} (1 - \alpha)^k\, \mathbf{e}_u \mathbf{P}^k, \qquad
    \mathbf{P} = \begin{pmatrix} 0 & \mathbf{P}_{UI} \\ \mathbf{P}_{IU} & 0 \end{pmatrix}.

The graph is bipartite, so items are visited at odd steps :math:`k = 2m + 1` only, where
:math:`\mathbf{e}_u \mathbf{P}^{2m+1}` restricted to items is
:math:`\mathbf{y}_0 (\mathbf{P}_{IU}\mathbf{P}_{UI})^m` with :math:`\mathbf{y}_0 = \mathbf{e}_u \mathbf{P}_{UI}`:

.. math::
    \boldsymbol{\pi}_I = \alpha (1 - \alpha) \sum_{m \ge 0} \beta^m\, \mathbf{y}_0
    (\mathbf{P}_{IU}\mathbf{P}_{UI})^m, \qquad \beta = (1 - \alpha)^2 .

:func:`item_ppr` evaluates this series (without the constant factor :math:`\alpha(1-\alpha)`, which
changes no ranking) by the fixed-point iteration

.. math::
    \mathbf{y} \leftarrow \mathbf{y}_0 + \beta\, \mathbf{y}\, \mathbf{P}_{IU}\mathbf{P}_{UI}
    \qquad (\mathbf{y} = \mathbf{y}_0 \text{ at the start}),

so after :math:`n` iterations :math:`\mathbf{y} = \sum_{m=0}^{n} \beta^m \mathbf{y}_0 (\mathbf{P}_{IU}\mathbf{P}_{UI})^m`
and the truncated mass is :math:`\beta^{n+1}/(1-\beta)` of :math:`1/(1-\beta)` (``alpha=0.15``:
:math:`\beta = 0.7225`, 0.1% left after the default 20 iterations). For a block of :math:`B` users
the iteration runs transposed, on dense ``[I, B]`` columns:
:math:`\mathbf{Y} \leftarrow \mathbf{Y}_0 + (\mathbf{R}^\top \mathbf{D}_U^{-1})\,(\beta\, \mathbf{R} \mathbf{D}_I^{-1})\, \mathbf{Y}`,
two CSR x dense products per iteration and no item-item matrix (which would be far denser than
:math:`\mathbf{R}`).

Speed (Gowalla, 29,858 users x 40,981 items, 810,128 training edges, 2-core CPU; see
``benchmarks/bench_ppr.py``): the products dominate, :math:`2 \cdot \mathrm{nnz}(\mathbf{R})` multiply-adds
per user and iteration, 1e12 for all users at 20 iterations. They run as
``torch.addmm(out, csr, dense, beta=0, out=out)`` with int32 CSR indices (as ``graphcf.nn.sparse._mm``;
``torch.sparse.mm`` is 25% slower, torch-sparse's ``SparseTensor`` matmul 4x, scipy 2.7x) on narrow
blocks of :data:`_BLOCK_USERS` users, whose ``[I, B]`` columns stay in cache: 9.3 G multiply-adds/s on
one core at B = 16 against 4.1 at 256 and 3.1 at 1024 (relabelling users / items by degree or RCM
gained < 10%). With several torch threads, the blocks are spread over that many Python threads,
each running the kernel single-threaded (torch's thread count is set to 1 meanwhile, in every
worker too since OpenMP's is per thread, and restored after): MKL's own threads synchronise after
every product, which on a busy machine made 2 threads 3x *slower* than one; independent blocks do
not wait for each other. Measured for all users, 2 threads: on an otherwise idle machine 43-63 s at
10 iterations (the trainer's default; top-100 overlap 0.99 with 100 iterations) and 72 s at 20;
sharing the machine with two other CPU-bound jobs 90 s at 10 and 150-176 s at 20 (products
130-155 s, ranking 19-21 s); peak RSS 1.1-1.24 GiB, of which 0.36 GiB are the cached bands.

Ranking. :class:`PPRHardNegativeSampler` ranks each user's *non-positive* items (training
positives get score :math:`-\infty` through the CSR before ranking) and keeps ranks
``lo..hi-1`` (0-based). Ties - e.g. items the walk cannot reach, all with score 0, or items with
identical neighbourhoods - are broken by a random permutation of the items drawn from ``seed``:
the ranking key of item :math:`i` is the 64-bit integer whose high word is the bit pattern of the
float32 score (monotone for scores :math:`\ge 0`, negative for :math:`-\infty`) and whose low word is
the item's position in the permutation, so ``torch.topk(key, hi)`` returns exactly the ``hi`` best
items, in order, without a full sort.
"""
from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from graphcf.data.build import user_item_csr
from graphcf.nn.sparse import _csr_tensor as _csr, _mm

logger = logging.getLogger(__name__)

__all__ = ["default_ppr_band", "item_ppr", "PPRHardNegativeSampler"]

#: users per block of the sparse products: the dense ``[I, B]`` block and its ``[U, B]`` image
#: stay in cache (Gowalla, 1 thread: 9.3 GMAC/s at B = 16, 8.4 at 32, 6.3 at 64, 4.1 at 256, 3.1 at 1024)
_BLOCK_USERS = 16

#: users per ranking task inside a chunk (torch.topk on ``[rows, I]`` int64 keys)
_RANK_ROWS = 64

_FORMAT_VERSION = 1


# ------------------------------------------------------------------ band


def default_ppr_band(num_items: int) -> Tuple[int, int]:
    r"""PinSAGE's hard-negative band, ranks 2000 to 5000, scaled down for small catalogues.

    .. math::
        \mathrm{lo} = \min(2000, \lfloor 0.05\, I \rfloor), \qquad
        \mathrm{hi} = \min(5000, \lfloor 0.125\, I \rfloor),

    then ``lo >= 1`` and ``hi >= lo + 1`` (so the band is never empty and never contains the
    top-ranked item). Gowalla (40,981 items) gives ``(2000, 5000)``; 1,000 items give ``(50, 125)``.

    Args:
        num_items: catalogue size :math:`I` (at least 2).

    Returns:
        ``(lo, hi)``: 0-based ranks ``lo..hi-1`` (``hi`` exclusive).

    Raises:
        ValueError: ``num_items < 2``.
    """
    num_items = int(num_items)
    if num_items < 2:
        raise ValueError(f"default_ppr_band: num_items must be >= 2, got {num_items}")
    lo = max(1, min(2000, num_items // 20))  # floor(0.05 I), exact in integers
    hi = max(lo + 1, min(5000, num_items // 8))  # floor(0.125 I)
    return lo, hi


# ------------------------------------------------------------------ walk operators


class _Walk(NamedTuple):
    """The training graph as the operators of the PPR iteration."""

    pos: Tensor  #: binary R [U, I] (CSR, int64 indices): the training positives
    a: Tensor  #: R D_I^-1 [U, I] (CSR, int32 indices where they fit)
    c: Tensor  #: R^T D_U^-1 [I, U] (CSR)

    @property
    def num_users(self) -> int:
        return int(self.pos.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.pos.shape[1])


def _walk(edge_index: Tensor, num_users: int, num_items: int, where: str) -> _Walk:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise ValueError(f"{where}: edge_index must be a [2, E] tensor, got {shape}")
    num_users, num_items = int(num_users), int(num_items)
    if num_users < 1 or num_items < 1:
        raise ValueError(f"{where}: num_users and num_items must be >= 1, got {num_users} and {num_items}")
    ei = edge_index.detach().cpu().long()
    if ei.numel() and (int(ei[0].min()) < 0 or int(ei[0].max()) >= num_users
                       or int(ei[1].min()) < 0 or int(ei[1].max()) >= num_items):
        raise IndexError(f"{where}: edge_index out of range for {num_users} users x {num_items} items")
    r = user_item_csr(ei, num_users, num_items)
    rt = user_item_csr(ei.flip(0), num_items, num_users)
    crow, col = r.crow_indices(), r.col_indices()
    crow_t, col_t = rt.crow_indices(), rt.col_indices()
    deg_u = crow.diff().to(torch.float32)
    deg_i = crow_t.diff().to(torch.float32)
    a = _csr(crow, col, deg_i[col].reciprocal(), (num_users, num_items))
    c = _csr(crow_t, col_t, deg_u[col_t].reciprocal(), (num_items, num_users))
    return _Walk(r, a, c)


def _row_entries(pos: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """``(block_row, item, degree)`` of the CSR entries of ``rows``: entry ``k`` is
    ``pos[rows[block_row[k]], item[k]]``; ``degree [len(rows)]`` are the rows' entry counts."""
    crow, col = pos.crow_indices(), pos.col_indices()
    start = crow[rows]
    cnt = crow[rows + 1] - start
    blk = torch.repeat_interleave(torch.arange(rows.numel()), cnt)
    total = blk.numel()
    off = torch.arange(total) - torch.repeat_interleave(torch.cumsum(cnt, 0) - cnt, cnt)
    return blk, col[start[blk] + off], cnt


def _ppr_columns(walk: _Walk, a_beta: Tensor, users: Tensor, num_iters: int) -> Tensor:
    """``[I, len(users)]``: the iteration of :func:`item_ppr` for one narrow block of users."""
    blk, items, cnt = _row_entries(walk.pos, users)
    y0 = torch.zeros(walk.num_items, users.numel())
    if items.numel():
        y0[items, blk] = cnt.to(torch.float32).reciprocal()[blk]
    y = y0
    for _ in range(num_iters):
        # Y <- Y0 + (R^T D_U^-1) (beta R D_I^-1) Y; in place on the fresh product
        y = _mm(walk.c, _mm(a_beta, y)).add_(y0)
    return y


@contextmanager
def _workers() -> Iterator[Optional[ThreadPoolExecutor]]:
    """As many single-threaded workers as torch has intra-op threads (``None``: just one).

    torch's thread count is 1 while the workers run and is restored afterwards."""
    n = torch.get_num_threads()
    if n <= 1:
        yield None
        return
    torch.set_num_threads(1)
    try:
        # set in each worker too: OpenMP's thread count is a per-thread setting
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="graphcf-ppr",
                                initializer=torch.set_num_threads, initargs=(1,)) as ex:
            yield ex
    finally:
        torch.set_num_threads(n)


def _run(ex: Optional[ThreadPoolExecutor], fn: Callable[[int, int], None], n: int, step: int) -> None:
    """``fn(start, stop)`` over ``range(0, n, step)``, on the workers if any (errors re-raised)."""
    spans = [(s, min(s + step, n)) for s in range(0, n, step)]
    if ex is None:
        for s, e in spans:
            fn(s, e)
    else:
        for f in [ex.submit(fn, s, e) for s, e in spans]:
            f.result()


def _ppr_into(walk: _Walk, users: Tensor, alpha: float, num_iters: int, out: Tensor,
              ex: Optional[ThreadPoolExecutor]) -> Tensor:
    """Fill ``out [len(users), I]`` with the PPR item scores of ``users`` (see :func:`item_ppr`)."""
    beta = (1.0 - alpha) ** 2
    a_beta = _csr(walk.a.crow_indices(), walk.a.col_indices(), walk.a.values() * beta, tuple(walk.a.shape))

    def block(s: int, e: int) -> None:
        out[s:e].copy_(_ppr_columns(walk, a_beta, users[s:e], num_iters).t())

    _run(ex, block, users.numel(), _BLOCK_USERS)
    return out


def _check_walk_args(alpha: float, num_iters: int, where: str) -> None:
    if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0):
        raise ValueError(f"{where}: alpha must be in (0, 1), got {alpha!r}")
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(f"{where}: num_iters must be an integer >= 1, got {num_iters!r}")


def _check_users(users: Tensor, num_users: int, where: str) -> Tensor:
    if not isinstance(users, Tensor):
        users = torch.as_tensor(users)
    if users.dtype.is_floating_point or users.dtype == torch.bool or users.dim() > 1:
        raise ValueError(f"{where}: users must be a 1-D integer tensor, got {users.dtype} {tuple(users.shape)}")
    users = users.reshape(-1).cpu().long()
    if users.numel() and (int(users.min()) < 0 or int(users.max()) >= num_users):
        raise IndexError(f"{where}: users out of range [0, {num_users})")
    return users


def item_ppr(edge_index: Tensor, num_users: int, num_items: int, users: Tensor, alpha: float = 0.15,
             num_iters: int = 20) -> Tensor:
    r"""Personalised PageRank of every item from each of ``users`` over the training graph.

    The item part of the stationary distribution of the random walk with restart at the user (see
    the module docstring), up to the constant factor :math:`\alpha (1 - \alpha)`:

    .. math::
        \mathbf{s}_u = \sum_{m=0}^{n} \beta^m\, \mathbf{y}_0 (\mathbf{P}_{IU}\mathbf{P}_{UI})^m,
        \qquad \mathbf{y}_0 = \mathbf{e}_u \mathbf{P}_{UI} = \frac{\mathbf{R}_{u\cdot}}{d_u},
        \qquad \beta = (1 - \alpha)^2,

    computed by ``n = num_iters`` iterations of :math:`\mathbf{y} \leftarrow \mathbf{y}_0 + \beta\,
    \mathbf{y} \mathbf{P}_{IU}\mathbf{P}_{UI}`. Each row sums to
    :math:`(1 - \beta^{n+1}) / (1 - \beta)`; as :math:`n \to \infty` the rows converge to the exact
    PPR times :math:`1 / (\alpha (1 - \alpha))`. A user without training items gets an all-zero row.
    Duplicate edges count once. Only ``[len(users), I]`` (the result) and per-block ``[I, 16]``
    columns are ever dense.

    Args:
        edge_index: ``[2, E]`` training edges (users row 0, items row 1).
        num_users, num_items: universe sizes :math:`U`, :math:`I`.
        users: ``[B]`` user indices (any integer dtype; repeats allowed).
        alpha: restart probability :math:`\alpha \in (0, 1)`. Default: ``0.15``.
        num_iters: iterations :math:`n \ge 1`. Default: ``20`` (0.1% of the mass left out at
            ``alpha=0.15``).

    Returns:
        ``[B, I]`` float32 scores, all :math:`\ge 0`.

    Raises:
        ValueError: bad ``edge_index`` shape, ``alpha`` or ``num_iters``. IndexError: ids out of range.
    """
    _check_walk_args(alpha, num_iters, "item_ppr")
    walk = _walk(edge_index, num_users, num_items, "item_ppr")
    users = _check_users(users, walk.num_users, "item_ppr")
    out = torch.empty(users.numel(), walk.num_items)
    with _workers() as ex:
        return _ppr_into(walk, users, float(alpha), num_iters, out, ex)


# ------------------------------------------------------------------ ranking


def _tie_break(num_items: int, seed: int) -> Tensor:
    """``[I]`` int32: item ``i``'s tie-break priority (higher wins), from a seeded random permutation."""
    perm = torch.randperm(num_items, generator=torch.Generator().manual_seed(int(seed)))
    prio = torch.empty(num_items, dtype=torch.int32)
    prio[perm] = torch.arange(num_items - 1, -1, -1, dtype=torch.int32)
    return prio


def _rank_keys(scores: Tensor, prio: Tensor) -> Tensor:
    """``[B, I]`` int64 keys ordered as (score, prio): the float32 bit pattern of ``scores``
    (monotone for scores >= 0, negative for -inf) in the high word, ``prio [I]`` (non-negative
    int32) in the low word. (Shift-or: 2x faster than interleaving int32 pairs, measured.)"""
    key = scores.contiguous().view(torch.int32).to(torch.int64).bitwise_left_shift_(32)
    return key.bitwise_or_(prio.to(torch.int64))


def _top_nonpositive(pos: Tensor, users: Tensor, scores: Tensor, prio: Tensor, k: int) -> Tensor:
    """``[B, k]`` int64: each user's ``k`` best items by ``scores`` (overwritten), training positives
    ranked last, ties broken by ``prio``."""
    scores.abs_()  # a -0.0 would have the smallest key; scores are >= 0 otherwise
    blk, items, _ = _row_entries(pos, users)
    scores[blk, items] = float("-inf")  # positives below every non-positive (score >= 0)
    return torch.topk(_rank_keys(scores, prio), k, dim=1, sorted=True).indices


def _ranked_nonpositives(walk: _Walk, users: Tensor, k: int, alpha: float, num_iters: int,
                         prio: Tensor) -> Tensor:
    """``[B, k]``: the ``k`` top-ranked items of each user, positives last (for the convergence
    checks in tests and ``benchmarks/bench_ppr.py``)."""
    scores = torch.empty(users.numel(), walk.num_items)
    with _workers() as ex:
        _ppr_into(walk, users, alpha, num_iters, scores, ex)
    return _top_nonpositive(walk.pos, users, scores, prio, k)


# ------------------------------------------------------------------ sampler


class PPRHardNegativeSampler:
    r"""PinSAGE hard negatives: uniform draws from each user's PPR rank band ``lo..hi-1``.

    At construction, for all users in chunks of ``chunk_size``, the PPR scores of
    :func:`item_ppr` are computed, each user's training positives are excluded, the remaining
    items are ranked (ties broken by a random permutation from ``seed``) and the items at ranks
    ``lo..hi-1`` are cached as :attr:`band_items`. A user with :math:`n_u` non-positive items gets

    .. math::
        \text{ranks} = \begin{cases}
        \mathrm{lo} \dots \min(n_u, \mathrm{hi}) - 1 & n_u > \mathrm{lo} \\
        \max(0, n_u - L) \dots n_u - 1 & n_u \le \mathrm{lo} \quad\text{(the last non-positives)}
        \end{cases}
        \qquad L = \mathrm{hi} - \mathrm{lo},

    so the band is shorter than :math:`L` when :math:`n_u < \mathrm{hi}` and empty only when the user
    has every item as a positive. A training positive is never in a band. :meth:`sample` then draws
    uniformly, with replacement, from the user's band.

    Args:
        edge_index: ``[2, E]`` training edges (users row 0, items row 1).
        num_users, num_items: universe sizes :math:`U`, :math:`I`.
        band: ``(lo, hi)`` 0-based ranks, ``hi`` exclusive, ``0 <= lo < hi <= num_items``.
            Default: ``None``, :func:`default_ppr_band` (``(2000, 5000)`` on Gowalla).
        alpha: restart probability of the walk, in ``(0, 1)``. Default: ``0.15``.
        num_iters: PPR iterations (:func:`item_ppr`). Default: ``20``.
        chunk_size: users scored and ranked together; peak memory is about
            ``chunk_size * I * 12`` bytes (float32 scores and int64 ranking keys). Default: ``1024``.
        seed: seed of the tie-breaking permutation. Default: ``0``.
        progress: show a tqdm progress bar over users. Default: ``False``.

    Attributes:
        band: the resolved ``(lo, hi)``.
        band_items: ``[U, L]`` int32 items of each user's band in rank order, ``-1`` after
            ``band_len[u]``.
        band_len: ``[U]`` int32 band lengths.
        timings: seconds of the build: ``{"ppr": .., "rank": .., "total": ..}`` (``{}`` after :meth:`load`).

    Raises:
        ValueError: naming the argument: ``band`` with ``lo < 0``, ``lo >= hi`` or ``hi > num_items``;
            ``alpha`` not in ``(0, 1)``; ``num_iters < 1``; ``chunk_size < 1``; bad ``edge_index``.
    """

    def __init__(self, edge_index: Tensor, num_users: int, num_items: int,
                 band: Optional[Tuple[int, int]] = None, alpha: float = 0.15, num_iters: int = 20,
                 chunk_size: int = 1024, seed: int = 0, progress: bool = False) -> None:
        where = "PPRHardNegativeSampler"
        self.num_users, self.num_items = int(num_users), int(num_items)
        self.band = self._check_band(band, self.num_items)
        _check_walk_args(alpha, num_iters, where)
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"{where}: chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.alpha, self.num_iters, self.chunk_size, self.seed = float(alpha), int(num_iters), chunk_size, int(seed)
        walk = _walk(edge_index, self.num_users, self.num_items, where)
        lo, hi = self.band
        width = hi - lo
        prio = _tie_break(self.num_items, self.seed)
        nonpos = self.num_items - walk.pos.crow_indices().diff()  # [U] non-positive items per user
        start = torch.where(nonpos > lo, torch.full_like(nonpos, lo), (nonpos - width).clamp_min(0))
        stop = nonpos.clamp_max(hi)
        self.band_len = (stop - start).to(torch.int32)
        self.band_items = torch.full((self.num_users, width), -1, dtype=torch.int32)
        offs = torch.arange(width)

        from tqdm.auto import tqdm

        t_ppr = t_rank = 0.0
        t0 = time.perf_counter()
        with tqdm(total=self.num_users, desc="PPR hard negatives", unit="user", disable=not progress) as bar, \
                _workers() as ex:
            for c0 in range(0, self.num_users, chunk_size):
                users = torch.arange(c0, min(c0 + chunk_size, self.num_users))
                t = time.perf_counter()
                scores = _ppr_into(walk, users, self.alpha, self.num_iters,
                                   torch.empty(users.numel(), self.num_items), ex)
                t_ppr += time.perf_counter() - t
                t = time.perf_counter()

                def rank(s: int, e: int, users: Tensor = users, scores: Tensor = scores) -> None:
                    u = users[s:e]
                    top = _top_nonpositive(walk.pos, u, scores[s:e], prio, hi)
                    idx = start[u, None] + offs
                    ok = offs < self.band_len[u, None]
                    got = top.gather(1, idx.clamp_max(hi - 1))
                    self.band_items[u] = torch.where(ok, got, -1).to(torch.int32)

                _run(ex, rank, users.numel(), _RANK_ROWS)
                t_rank += time.perf_counter() - t
                del scores
                bar.update(users.numel())
        total = time.perf_counter() - t0
        self.timings = {"ppr": t_ppr, "rank": t_rank, "total": total}
        short = int((self.band_len < width).sum())
        logger.info("PPR hard negatives: band %s for %d users x %d items in %.1fs (products %.1fs, ranking %.1fs)%s",
                    self.band, self.num_users, self.num_items, total, t_ppr, t_rank,
                    f"; {short} users with a shorter band" if short else "")

    @staticmethod
    def _check_band(band: Optional[Sequence[int]], num_items: int) -> Tuple[int, int]:
        if band is None:
            return default_ppr_band(num_items)
        try:
            lo, hi = (int(b) for b in band)
        except (TypeError, ValueError):
            raise ValueError(f"PPRHardNegativeSampler: band must be a pair (lo, hi) of ints, got {band!r}") from None
        if lo < 0 or lo >= hi or hi > num_items:
            raise ValueError(f"PPRHardNegativeSampler: band must satisfy 0 <= lo < hi <= num_items "
                             f"({num_items}), got band={band!r}")
        return lo, hi

    def __repr__(self) -> str:
        return (f"PPRHardNegativeSampler(num_users={self.num_users}, num_items={self.num_items}, band={self.band}, "
                f"alpha={self.alpha}, num_iters={self.num_iters}, seed={self.seed})")

    def sample(self, users: Tensor, num_negatives: int, generator: Optional[torch.Generator] = None) -> Tensor:
        r"""Hard negatives for ``users``: ``[B, num_negatives]`` int64 items, each drawn uniformly
        (with replacement) from the user's cached band, never a training positive.

        Args:
            users: ``[B]`` user indices.
            num_negatives: draws per user (``>= 1``).
            generator: CPU generator for reproducible draws (default: torch's global RNG).

        Raises:
            ValueError: ``num_negatives < 1``, or a user whose band is empty (every item a positive).
            IndexError: users out of range.
        """
        if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
            raise ValueError(f"PPRHardNegativeSampler.sample: num_negatives must be an integer >= 1, "
                             f"got {num_negatives!r}")
        device = users.device if isinstance(users, Tensor) else torch.device("cpu")
        users = _check_users(users, self.num_users, "PPRHardNegativeSampler.sample")
        length = self.band_len[users].to(torch.int64)
        if users.numel() and int(length.min()) == 0:
            bad = int(users[length == 0][0])
            raise ValueError(f"PPRHardNegativeSampler.sample: user {bad} has no non-positive item to sample")
        u = torch.rand(users.numel(), num_negatives, generator=generator, dtype=torch.float64)
        slot = (u * length[:, None]).to(torch.int64).clamp_max_((length - 1).clamp_min(0)[:, None])
        width = self.band_items.shape[1]
        flat = users[:, None] * width + slot
        return self.band_items.view(-1)[flat].to(torch.int64).to(device)

    # -------------------------------------------------------------- persistence

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the cached bands to ``path`` (``torch.save``; atomic: a temporary file in the
        same directory, then ``os.replace``)."""
        path = Path(path)
        state = {"format": "graphcf.PPRHardNegativeSampler", "version": _FORMAT_VERSION,
                 "num_users": self.num_users, "num_items": self.num_items, "band": list(self.band),
                 "alpha": self.alpha, "num_iters": self.num_iters, "chunk_size": self.chunk_size,
                 "seed": self.seed, "band_items": self.band_items, "band_len": self.band_len}
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "PPRHardNegativeSampler":
        """Read a sampler written by :meth:`save`; checks the format and the tensors' shapes and dtypes.

        Raises:
            ValueError: not a saved sampler, or inconsistent contents.
        """
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != "graphcf.PPRHardNegativeSampler":
            raise ValueError(f"PPRHardNegativeSampler.load: {path} is not a saved PPRHardNegativeSampler")
        if state.get("version") != _FORMAT_VERSION:
            raise ValueError(f"PPRHardNegativeSampler.load: {path} has format version {state.get('version')}, "
                             f"expected {_FORMAT_VERSION}")
        nu, ni = int(state["num_users"]), int(state["num_items"])
        lo, hi = (int(b) for b in state["band"])
        items, length = state["band_items"], state["band_len"]
        problems: List[str] = []
        if not (0 <= lo < hi <= ni):
            problems.append(f"band {(lo, hi)} for {ni} items")
        if not isinstance(items, Tensor) or items.dtype != torch.int32 or tuple(items.shape) != (nu, hi - lo):
            problems.append(f"band_items must be int32 [{nu}, {hi - lo}]")
        if not isinstance(length, Tensor) or length.dtype != torch.int32 or tuple(length.shape) != (nu,):
            problems.append(f"band_len must be int32 [{nu}]")
        if not problems:
            if length.numel() and (int(length.min()) < 0 or int(length.max()) > hi - lo):
                problems.append("band_len out of [0, hi - lo]")
            elif items.numel() and (int(items.min()) < -1 or int(items.max()) >= ni):
                problems.append("band_items out of [-1, num_items)")
        if problems:
            raise ValueError(f"PPRHardNegativeSampler.load: {path}: " + "; ".join(problems))
        self = cls.__new__(cls)
        self.num_users, self.num_items, self.band = nu, ni, (lo, hi)
        self.alpha, self.num_iters = float(state["alpha"]), int(state["num_iters"])
        self.chunk_size, self.seed = int(state["chunk_size"]), int(state["seed"])
        self.band_items, self.band_len = items.contiguous(), length.contiguous()
        self.timings = {}
        return self
