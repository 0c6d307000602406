r"""The model contract: one object that the trainer, the evaluators, ``recommend``, the CLI and
checkpoints deal with, whether the model is trained (an encoder and a scorer) or training-free
(a closed form such as EASE).

A :class:`Recommender` offers

* :meth:`~Recommender.fit_closed_form` ``(data)``: the closed-form part of fitting (the whole fit
  of a training-free model; item counts for the popularity baseline; nothing for a trained model,
  which :class:`~graphcf.train.Trainer` fits by gradient steps);
* :meth:`~Recommender.ranker` ``(data) -> Ranker``: what scoring needs, computed once (a factor
  model's propagated user/item tables; EASE's training rows), then
  :meth:`Ranker.score` ``(users, items=None)`` gives the ``[B, I]`` (or ``[B, N]``) scores of a batch
  of users in bounded memory: no dense users x items matrix beyond the batch;
* :meth:`~Recommender.score` and :meth:`~Recommender.topk` (seen items excluded) as one-off calls;
* ``state_dict`` / ``load_state_dict`` / ``.to(device)`` as any :class:`torch.nn.Module`.

:class:`FactorModel` keeps the encoder / scorer split of the trained models inside it (so the
objectives keep their fast row-restricted training step, :meth:`Encoder.embed_rows`);
:class:`TrainingFreeModel` is the base of closed-form models, which score a user's training row
times an item-item operator.
"""
from __future__ import annotations

import logging
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, split_edge_index, train_edge_index, user_item_csr
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import DotScorer, Scorer
from graphcf.typing import TopK

logger = logging.getLogger(__name__)

__all__ = ["Ranker", "FactorRanker", "Recommender", "FactorModel", "TrainingFreeModel", "as_model",
           "estimate_dense_bytes", "check_memory"]


class Ranker:
    """Scores of batches of users against all items (or given items), computed from a model's
    prepared state. Made by :meth:`Recommender.ranker`; consumed by the evaluators and ``recommend``.

    Attributes:
        num_users, num_items: the universe.
        pair_cost: floats the scoring materialises per (user, item) pair (``1`` for a plain
            ``[B, I]`` block; an NCF MLP tower needs its hidden widths more). The evaluators size
            their user chunks by it.
    """

    num_users: int
    num_items: int
    pair_cost: int = 1
    element_size: int = 4
    device: torch.device = torch.device("cpu")

    def score(self, users: Tensor, items: Optional[Tensor] = None) -> Tensor:  # pragma: no cover - abstract
        """Scores of ``users [B]`` against all items ``[B, I]``, the shared ``items [N]`` (``[B, N]``) or
        each row's own ``items [B, N]`` (``[B, N]``). Returns a *new* tensor (callers mask it in place)."""
        raise NotImplementedError


class FactorRanker(Ranker):
    """A :class:`Ranker` over precomputed user and item representations and a scorer."""

    def __init__(self, user: Tensor, item: Tensor, scorer: Scorer, user_ids: Optional[Tensor] = None,
                 num_users: Optional[int] = None) -> None:
        self.user, self.item, self.scorer = user, item, scorer
        self.user_ids = user_ids  # sorted global ids of ``user``'s rows, when it holds a subset
        self.num_users = int(num_users if num_users is not None else user.shape[0])
        self.num_items = int(item.shape[0])
        self.pair_cost = max(1, int(scorer.pair_cost))
        self.device, self.element_size = user.device, max(4, item.element_size())

    def user_rows(self, users: Tensor) -> Tensor:
        """``user[users]``; a view (no copy) when ``users`` is a sorted run of consecutive ids."""
        if self.user_ids is not None:  # a subset of users: their local rows
            pos = torch.searchsorted(self.user_ids, users)
            if bool((pos >= len(self.user_ids)).any()) or not torch.equal(self.user_ids[pos.clamp_max(
                    len(self.user_ids) - 1)], users):
                raise ValueError("FactorRanker: scored users outside the subset it was prepared for")
            return self.user[pos]
        n = users.numel()
        if n:
            first, last = int(users[0]), int(users[-1])
            if last - first + 1 == n and (n == 1 or bool((users[1:] > users[:-1]).all())):
                return self.user[first: last + 1]
        return self.user[users]

    def score(self, users: Tensor, items: Optional[Tensor] = None) -> Tensor:
        u = self.user_rows(users)
        if items is None:
            return self.scorer.score_all(u, self.item)
        if items.dim() == 1:
            return self.scorer.score_all(u, self.item[items])
        return self.scorer.score_many(u, self.item[items])


class Recommender(nn.Module):
    """Base class of every graphcf model (see the module docstring).

    Class attributes:
        training_free: fitted by :meth:`fit_closed_form` alone; the trainer runs no epochs and
            says which training settings it ignored.
    """

    training_free: bool = False

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"{type(self).__name__}: num_users and num_items must be positive, "
                             f"got {num_users}, {num_items}")
        self.num_users, self.num_items = int(num_users), int(num_items)

    # -- fitting --------------------------------------------------------------
    def fit_closed_form(self, data: HeteroData) -> None:
        """The closed-form part of fitting on ``data``'s training edges (default: nothing)."""

    def fit(self, data: HeteroData, config: "Optional[object]" = None, **fit_kwargs):  # type: ignore[no-untyped-def]
        """Fit on ``data``: ``Trainer(config).fit(self, data, **fit_kwargs)`` (see :class:`~graphcf.train.Trainer`;
        a training-free model runs its closed form only). Returns the :class:`~graphcf.train.TrainResult`."""
        from graphcf.train import Trainer

        return Trainer(config).fit(self, data, **fit_kwargs)

    def check_graph(self, data: HeteroData) -> None:
        """Raise ``ValueError`` if ``data`` is not of this model's universe."""
        nu, ni = num_users_items(data)
        if (nu, ni) != (self.num_users, self.num_items):
            raise ValueError(f"{type(self).__name__} was built for {self.num_users} users x {self.num_items} "
                             f"items, but the graph has {nu} x {ni}")

    @property
    def device(self) -> torch.device:
        """The device of the model's first parameter or buffer (CPU when it has none)."""
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    # -- scoring --------------------------------------------------------------
    def ranker(self, data: HeteroData, users: Optional[Tensor] = None) -> Ranker:  # pragma: no cover - abstract
        """Prepare scoring on ``data`` (in eval mode, without autograd) and return a :class:`Ranker`; with
        ``users``, only those users need to be scorable (a model may then skip work for the others)."""
        raise NotImplementedError

    @torch.no_grad()
    def score(self, data: HeteroData, users: Tensor, items: Optional[Tensor] = None) -> Tensor:
        """Scores of ``users`` against all items (or ``items``, see :meth:`Ranker.score`)."""
        users = torch.as_tensor(users, dtype=torch.long, device=self.device)
        return self.ranker(data).score(users, None if items is None else items.to(self.device))

    @torch.no_grad()
    def topk(self, data: HeteroData, users: Tensor, k: int = 10, exclude_splits: Sequence[str] = ("train",),
             chunk_size: int = 4096) -> TopK:
        """Top-``k`` items of ``users`` (indices of ``data``), never an item of ``exclude_splits``.

        Users are scored ``chunk_size`` at a time, so only a ``[chunk, I]`` block exists at once.
        ``k`` is capped at the number of items; an excluded item only appears (score ``-inf``) when
        a user has fewer than ``k`` items left.
        """
        from graphcf.evaluate import gather_rows

        nu, ni = num_users_items(data)
        users = torch.as_tensor(users, dtype=torch.long)
        if len(users) and (int(users.min()) < 0 or int(users.max()) >= nu):
            raise ValueError(f"topk: user indices must be in 0..{nu - 1}")
        if k < 1:
            raise ValueError(f"topk: k must be >= 1, got {k}")
        k = min(int(k), ni)
        device = self.device
        ranker = self.ranker(data, users=torch.unique(users).to(device))
        edges = [split_edge_index(data, s) for s in exclude_splits]
        csr = user_item_csr(torch.cat(edges, dim=1) if edges else train_edge_index(data)[:, :0], nu, ni)
        crow, col = csr.crow_indices(), csr.col_indices()
        out_i, out_s = [], []
        for part in users.split(max(1, int(chunk_size))):
            scores = ranker.score(part.to(device))
            local, cols = gather_rows(crow, col, part.to(crow.device))
            if cols.numel():
                scores.view(-1).index_fill_(0, (local * ni + cols).to(scores.device), float("-inf"))
            values, idx = torch.topk(scores, k, dim=1)
            out_i.append(idx)
            out_s.append(values)
        if not out_i:
            empty = torch.zeros(0, k, device=device)
            return TopK(empty.long(), empty)
        return TopK(torch.cat(out_i), torch.cat(out_s))


class FactorModel(Recommender):
    """A trained model: an :class:`~graphcf.nn.encoders.base.Encoder` (graph -> user and item
    representations) and a :class:`~graphcf.nn.scorers.Scorer` (representations -> scores).

    The trainer's objectives use :attr:`encoder` and :attr:`scorer` directly (their fast
    row-restricted step); everything else uses the :class:`Recommender` contract. The state dict
    holds ``encoder.*`` and ``scorer.*``.
    """

    def __init__(self, encoder: Encoder, scorer: Optional[Scorer] = None) -> None:
        super().__init__(encoder.num_users, encoder.num_items)
        self.encoder = encoder
        self.scorer = scorer if scorer is not None else DotScorer()

    @property
    def training_free(self) -> bool:  # type: ignore[override]
        """A factor model without trainable parameters (popularity) is fitted by its closed form."""
        return not any(p.requires_grad for p in self.parameters())

    def fit_closed_form(self, data: HeteroData) -> None:
        self.encoder.fit_statistics(data)

    @torch.no_grad()
    def ranker(self, data: HeteroData, users: Optional[Tensor] = None) -> FactorRanker:
        """The encoder's tables on ``data``; with ``users`` (sorted, unique), only their rows are embedded
        (``encoder(data, users=users)``: Mult-VAE encodes just those rows; a graph encoder still propagates)."""
        was = self.training
        self.eval()
        try:
            emb = self.encoder(data, users=users)
        finally:
            self.train(was)
        if users is None:
            return FactorRanker(emb.user, emb.item, self.scorer)
        return FactorRanker(emb.user, emb.item, self.scorer, user_ids=users, num_users=self.num_users)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):  # type: ignore[override]
        """Also accepts the older ``{"encoder": ..., "scorer": ...}`` checkpoint layout."""
        if set(state_dict) <= {"encoder", "scorer"} and isinstance(state_dict.get("encoder"), dict):
            state_dict = {**{f"encoder.{k}": v for k, v in state_dict["encoder"].items()},
                          **{f"scorer.{k}": v for k, v in state_dict.get("scorer", {}).items()}}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return ""


class TrainingFreeModel(Recommender):
    r"""Base of the closed-form models whose scores are a user's training row times an item-item
    operator, :math:`\hat{\mathbf{y}}_u = \mathbf{x}_u \mathbf{B}`.

    Subclasses implement :meth:`fit_closed_form` (computing their operator from ``data``'s training
    edges, kept as buffers so that ``state_dict`` and ``.to`` carry it) and :meth:`score_rows`
    ``(x)``: the scores of a sparse CSR batch of training rows ``x [B, I]``.
    """

    training_free = True
    #: floats :meth:`score_rows` materialises per (user, item) pair (the evaluators size chunks by it)
    pair_cost: int = 1

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(num_users, num_items)
        self._rows_cache: Dict[str, object] = {}

    def training_rows(self, data: HeteroData) -> Tensor:
        """The binary ``[U, I]`` training matrix of ``data`` as a sparse CSR tensor on the model's device
        (cached for the graph it was built from)."""
        self.check_graph(data)
        ei = train_edge_index(data)
        key = (ei.data_ptr(), ei.shape[1], str(self.device))
        if self._rows_cache.get("key") != key:
            csr = user_item_csr(ei, self.num_users, self.num_items)
            ones = torch.ones_like(csr.values(), dtype=torch.float32)
            csr = torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), ones, csr.shape,
                                          check_invariants=False)
            self._rows_cache = {"key": key, "rows": csr.to(self.device), "ei": ei}
        return self._rows_cache["rows"]  # type: ignore[return-value]

    def score_rows(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Scores ``[B, I]`` of the sparse CSR training rows ``x [B, I]`` (a new tensor)."""
        raise NotImplementedError

    @torch.no_grad()
    def ranker(self, data: HeteroData, users: Optional[Tensor] = None) -> Ranker:
        return _RowRanker(self, self.training_rows(data))


class _RowRanker(Ranker):
    def __init__(self, model: TrainingFreeModel, rows: Tensor) -> None:
        self.model, self.rows = model, rows
        self.num_users, self.num_items = model.num_users, model.num_items
        self.device, self.pair_cost = rows.device, int(model.pair_cost)
        crow = rows.crow_indices()
        self._crow, self._col, self._val = crow.long(), rows.col_indices().long(), rows.values()

    def _batch_rows(self, users: Tensor) -> Tensor:
        from graphcf.nn.sparse import csr_row_positions

        users = users.to(self._crow.device).long()
        local, pos = csr_row_positions(self._crow, users)
        counts = self._crow[users + 1] - self._crow[users]
        crow = torch.zeros(len(users) + 1, dtype=torch.long, device=users.device)
        torch.cumsum(counts, 0, out=crow[1:])
        return torch.sparse_csr_tensor(crow, self._col[pos], self._val[pos], (len(users), self.num_items),
                                       check_invariants=False)

    def score(self, users: Tensor, items: Optional[Tensor] = None) -> Tensor:
        scores = self.model.score_rows(self._batch_rows(users))
        if items is None:
            return scores
        if items.dim() == 1:
            return scores[:, items]
        return torch.gather(scores, 1, items.to(scores.device).long())


def as_model(model: "Recommender | Encoder", scorer: Optional[Scorer] = None) -> Recommender:
    """``model`` itself, or an :class:`Encoder` (and its scorer) wrapped as a :class:`FactorModel`."""
    if isinstance(model, Recommender):
        if scorer is not None:
            raise ValueError("as_model: a scorer goes with an Encoder, not with a Recommender (it has its own)")
        return model
    if isinstance(model, Encoder):
        return FactorModel(model, scorer)
    raise TypeError(f"expected a graphcf Recommender or Encoder, got {type(model).__name__}")


def estimate_dense_bytes(*shapes: Sequence[int], dtype: torch.dtype = torch.float32, copies: float = 1.0) -> int:
    """Bytes of dense tensors of the given shapes and dtype, times ``copies`` (work space)."""
    size = torch.tensor([], dtype=dtype).element_size()
    total = 0
    for shape in shapes:
        n = 1
        for s in shape:
            n *= int(s)
        total += n * size
    return int(total * copies)


def available_memory_bytes(device: torch.device) -> Optional[int]:
    """Memory available for new allocations on ``device`` (``MemAvailable`` of ``/proc/meminfo`` on the
    CPU, free memory on CUDA); ``None`` where unknown."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
    return None


def check_memory(need: int, what: str, device: torch.device, limit: Optional[int] = None) -> None:
    """Refuse (``MemoryError`` with the figures) when ``need`` bytes exceed ``limit`` (default: the memory
    available on ``device``); log the estimate otherwise."""
    avail = limit if limit is not None else available_memory_bytes(device)
    gib = 2.0 ** 30
    if avail is not None and need > avail:
        raise MemoryError(f"{what} needs about {need / gib:.1f} GiB on {device}, but only {avail / gib:.1f} GiB "
                          f"{'is allowed' if limit is not None else 'is available'}; use a smaller catalogue, "
                          f"a low-rank model, or a machine with more memory")
    logger.info("%s: about %.2f GiB on %s%s", what, need / gib, device,
                "" if avail is None else f" ({avail / gib:.1f} GiB available)")
