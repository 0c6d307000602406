"""Training objectives: what a mini-batch is and how its loss is computed.

An objective owns the batch construction (which uses a sampler) and the loss (a pure
function from :mod:`graphcf.losses`). The :class:`~graphcf.train.Trainer` only runs
the loop, so one trainer serves pairwise (BPR), pointwise (NCF's log loss with sampled
negatives) and user-row (Mult-VAE's multinomial likelihood) models alike.

Every objective has a small ``state_dict`` (e.g. the KL-annealing step counter), saved
in the trainer's checkpoint so a resumed run continues the same schedule.
"""
from __future__ import annotations

from typing import Any, Dict, Iterator, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, train_edge_index
from graphcf.losses import bce_loss, bpr_loss, l2_reg, multinomial_nll
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.samplers.negative import PopularityNegativeSampler, UniformNegativeSampler
from graphcf.typing import ITEM, USER

Batch = Tuple[Tensor, ...]


def _pair_scores(scorer: Scorer, u: Tensor, items_emb: Tensor) -> Tensor:
    """Score ``u [B, d]`` against ``items_emb [B, d]`` or ``[B, N, d]`` -> ``[B]`` / ``[B, N]``."""
    if items_emb.dim() == 2:
        return scorer(u, items_emb)
    return scorer.score_many(u, items_emb)


def _default_reg_rows(encoder: Encoder) -> bool:
    """Whether ``encoder`` regularises its output rows (does not override ``reg_embeddings``)."""
    return type(encoder).reg_embeddings is Encoder.reg_embeddings


def anneal_beta(step: int, total_steps: int, cap: float) -> float:
    r"""Linear KL annealing (Liang et al. 2018): :math:`\beta = \min(\text{cap}, \text{step} / \text{total})`."""
    if total_steps <= 0:
        return cap
    return min(cap, step / total_steps)


class Objective:
    """Base class; subclasses implement :meth:`batches` and :meth:`loss`."""

    def setup(self, data: HeteroData) -> None:
        """Build samplers / caches for this training graph (called once per fit)."""

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def num_rows(self, batch: Batch) -> int:
        return int(batch[0].numel())

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass


class PairwiseObjective(Objective):
    r"""BPR over (user, positive, negatives) triples: one epoch visits every training edge once.

    .. math::
        \mathcal{L} = \text{BPR}(\hat y_{ui}, \hat y_{uj}) + \lambda \, \Omega(\mathbf{e}_u, \mathbf{e}_i, \mathbf{e}_j)

    Args:
        num_negatives: negatives per positive.
        reg: :math:`\lambda`, weight of :func:`~graphcf.losses.l2_reg` on the batch rows of
            the encoder's regularised embeddings (``Encoder.reg_embeddings``; by default
            the output rows).
        sampler: ``"uniform"`` or ``"popularity"`` (weight ``count^alpha``).
        popularity_alpha: exponent of the popularity sampler.
    """

    def __init__(self, num_negatives: int = 1, reg: float = 1e-4, sampler: str = "uniform",
                 popularity_alpha: float = 0.75) -> None:
        if sampler not in ("uniform", "popularity"):
            raise ValueError(f"PairwiseObjective: sampler must be 'uniform' or 'popularity', got {sampler!r}")
        self.num_negatives = num_negatives
        self.reg = reg
        self.sampler_name = sampler
        self.popularity_alpha = popularity_alpha

    def setup(self, data: HeteroData) -> None:
        nu, ni = num_users_items(data)
        ei = train_edge_index(data)
        if self.sampler_name == "uniform":
            self.sampler: UniformNegativeSampler = UniformNegativeSampler(ei, nu, ni)
        else:
            self.sampler = PopularityNegativeSampler(ei, nu, ni, alpha=self.popularity_alpha)

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        ei = train_edge_index(data)
        perm = torch.randperm(ei.size(1), generator=generator)
        for idx in perm.split(batch_size):
            users, pos = ei[0, idx], ei[1, idx]
            neg = self.sampler.sample(users, self.num_negatives, generator=generator)
            yield users, pos, neg

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        users, pos, neg = batch
        emb = encoder.embed_rows(data, users, torch.cat([pos, neg.reshape(-1)]))
        u, p, n = emb.user, emb.item[: len(pos)], emb.item[len(pos):].view(*neg.shape, -1)
        loss = bpr_loss(_pair_scores(scorer, u, p), _pair_scores(scorer, u, n))
        if self.reg > 0:
            # the default reg_embeddings are exactly the rows gathered above: reuse them
            rows = (u, p, n) if _default_reg_rows(encoder) else encoder.reg_embeddings(emb, users, pos, neg)
            loss = loss + self.reg * l2_reg(*rows, batch_size=len(users))
        if emb.aux_loss is not None:
            loss = loss + emb.aux_loss
        return loss


class NeighborPairwiseObjective(Objective):
    r"""BPR on neighbour-sampled subgraphs (:class:`~graphcf.samplers.neighbor.NeighborBatches`):
    the encoder runs on each batch's :math:`K`-hop sampled subgraph instead of the full graph.

    Same loss as :class:`PairwiseObjective`; a negative draw that is a training positive of
    its user gets weight 0 (the BPR mean runs over the valid pairs only), so no positive is
    ever used as a negative. Needs an encoder that accepts sampled subgraphs
    (``supports_sampled_subgraphs = True``: LightGCN, NGCF).

    Args:
        num_neighbors: neighbours per node and hop; its length must be at least the encoder's
            ``num_layers``.
        num_negatives, reg: as in :class:`PairwiseObjective`.
    """

    def __init__(self, num_neighbors: Sequence[int] = (10, 10, 10), num_negatives: int = 1,
                 reg: float = 1e-4) -> None:
        from graphcf.samplers.neighbor import NeighborBatches

        self.loader = NeighborBatches(num_neighbors, num_negatives)
        self.num_negatives = num_negatives
        self.reg = reg

    def setup(self, data: HeteroData) -> None:
        nu, ni = num_users_items(data)
        self.loader.setup(data)
        self.positives = UniformNegativeSampler(train_edge_index(data), nu, ni)

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        for b in self.loader.batches(batch_size, generator):
            yield (b,)

    def num_rows(self, batch: Batch) -> int:
        return int(batch[0][USER].src_index.numel())

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        from graphcf.samplers.neighbor import batch_triples

        (sub,) = batch
        if not getattr(encoder, "supports_sampled_subgraphs", False):
            raise TypeError(f"{type(encoder).__name__} does not run on sampled subgraphs; use sampling='full'")
        depth = getattr(encoder, "num_layers", 0)
        if len(self.loader.num_neighbors) < depth:
            raise ValueError(f"num_neighbors {self.loader.num_neighbors} samples {len(self.loader.num_neighbors)} hops "
                             f"but {type(encoder).__name__} has {depth} layers")
        users, pos, neg = batch_triples(sub)
        gu, gp, gn = sub[USER].n_id[users], sub[ITEM].n_id[pos], sub[ITEM].n_id[neg]
        valid = ~self.positives.is_positive(gu.repeat_interleave(neg.size(1)), gn.flatten()).view_as(gn)
        emb = encoder(sub)
        u, p, n = emb.user[users], emb.item[pos], emb.item[neg]
        loss = bpr_loss(_pair_scores(scorer, u, p), _pair_scores(scorer, u, n), mask=valid)
        if self.reg > 0:
            rows = (u, p, n) if _default_reg_rows(encoder) else encoder.reg_embeddings(emb, gu, gp, gn)
            loss = loss + self.reg * l2_reg(*rows, batch_size=len(users))
        if emb.aux_loss is not None:
            loss = loss + emb.aux_loss
        return loss


class PointwiseObjective(Objective):
    r"""NCF's pointwise log loss (He et al., WWW 2017): each epoch pairs every training
    positive with ``num_negatives`` fresh uniform negatives (label 0), shuffled together.

    .. math::
        \mathcal{L} = -\sum_{(u,i) \in \mathcal{Y}} \log \sigma(\hat y_{ui})
                      -\sum_{(u,j) \in \mathcal{Y}^-} \log(1 - \sigma(\hat y_{uj}))

    averaged over the batch. Args: ``num_negatives`` (paper: 4), ``reg`` (L2 on the batch rows).
    """

    def __init__(self, num_negatives: int = 4, reg: float = 0.0) -> None:
        self.num_negatives = num_negatives
        self.reg = reg

    def setup(self, data: HeteroData) -> None:
        nu, ni = num_users_items(data)
        self.sampler = UniformNegativeSampler(train_edge_index(data), nu, ni)

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        ei = train_edge_index(data)
        r = self.num_negatives
        neg_users = ei[0].repeat_interleave(r)
        neg_items = self.sampler.sample(neg_users, 1, generator=generator)
        users = torch.cat([ei[0], neg_users])
        items = torch.cat([ei[1], neg_items])
        labels = torch.cat([torch.ones(ei.size(1)), torch.zeros(len(neg_users))])
        perm = torch.randperm(len(users), generator=generator)
        for idx in perm.split(batch_size):
            yield users[idx], items[idx], labels[idx]

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        users, items, labels = batch
        emb = encoder(data)
        u, i = emb.user[users], emb.item[items]
        loss = bce_loss(scorer(u, i), labels)
        if self.reg > 0:
            loss = loss + self.reg * l2_reg(*encoder.reg_embeddings(emb, users, items), batch_size=len(users))
        if emb.aux_loss is not None:
            loss = loss + emb.aux_loss
        return loss


class MultinomialObjective(Objective):
    r"""Mult-VAE / Mult-DAE (Liang et al., WWW 2018): batches of users, multinomial
    log-likelihood of each user's training row, plus :math:`\beta` times the encoder's
    auxiliary loss (the KL term), with :math:`\beta = \min(\text{cap}, t / T)` after
    :math:`t` updates, :math:`T` = ``anneal_steps`` (paper: 200,000 and cap 0.2, so
    :math:`\beta` grows linearly and reaches the cap after ``cap * anneal_steps`` updates).

    .. math::
        \mathcal{L} = -\frac{1}{B}\sum_u \sum_i x_{ui} \log \operatorname{softmax}(\hat{\mathbf{y}}_u)_i
        + \beta \, \mathrm{KL}

    The step counter is part of :meth:`state_dict`, so resumed runs keep the schedule.
    """

    def __init__(self, anneal_steps: int = 200_000, anneal_cap: float = 0.2) -> None:
        self.anneal_steps = anneal_steps
        self.anneal_cap = anneal_cap
        self.step = 0

    def setup(self, data: HeteroData) -> None:
        from graphcf.data.build import user_item_csr

        nu, ni = num_users_items(data)
        self.rows = user_item_csr(train_edge_index(data), nu, ni)
        deg = self.rows.crow_indices().diff()
        self.users_with_items = torch.nonzero(deg > 0).flatten()

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        users = self.users_with_items[torch.randperm(len(self.users_with_items), generator=generator)]
        for b in users.split(batch_size):
            yield (b,)

    @property
    def beta(self) -> float:
        return anneal_beta(self.step, self.anneal_steps, self.anneal_cap)

    def _entries(self, users: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``(local row, item, value)`` of the nonzeros of the training rows of ``users`` (batch order).

        Gathered from the CSR arrays: torch has no ``index_select`` for sparse CSR tensors.
        """
        crow, col, val = self.rows.crow_indices(), self.rows.col_indices(), self.rows.values()
        users = users.to(crow.device).long()
        start = crow[users]
        counts = crow[users + 1] - start
        total = int(counts.sum())
        local = torch.repeat_interleave(torch.arange(len(users), device=crow.device), counts, output_size=total)
        first = torch.cumsum(counts, 0) - counts  # position of each row's first entry in the batch
        idx = start[local] + torch.arange(total, device=crow.device) - first[local]
        return local, col[idx], val[idx]

    def _sparse_target(self, users: Tensor, like: Tensor) -> Tensor:
        """The ``[B, I]`` training rows of ``users`` as a sparse COO tensor on ``like``'s device."""
        local, item, val = self._entries(users)
        return torch.sparse_coo_tensor(torch.stack([local, item]).to(like.device), val.to(like.device, like.dtype),
                                       (len(users), self.rows.shape[1]), check_invariants=False)

    def _target(self, users: Tensor, like: Tensor) -> Tensor:
        """Dense ``[B, I]`` training rows of ``users``, dtype/device of ``like`` (a reference for tests)."""
        local, item, val = self._entries(users)
        target = torch.zeros(len(users), self.rows.shape[1], dtype=like.dtype, device=like.device)
        target[local.to(like.device), item.to(like.device)] = val.to(like.device, like.dtype)
        return target

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        (users,) = batch
        emb = encoder(data, users=users)
        logits = scorer.score_all(emb.user, emb.item)
        loss = multinomial_nll(logits, self._sparse_target(users, logits))
        if emb.aux_loss is not None:
            loss = loss + self.beta * emb.aux_loss
        if encoder.training:
            self.step += 1
        return loss

    def state_dict(self) -> Dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.step = int(state.get("step", 0))


OBJECTIVES = {"bpr": PairwiseObjective, "bce": PointwiseObjective, "multinomial": MultinomialObjective}
