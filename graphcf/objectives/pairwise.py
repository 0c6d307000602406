"""The pairwise objectives: BPR, PinSAGE's max-margin loss and a sampled softmax over (user, positive,
negatives) triples, on the full graph or on neighbour-sampled subgraphs; their settings and registry entries."""
from __future__ import annotations

import json
import os
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, train_edge_index, user_item_csr
from graphcf.losses import PAIR_LOSSES, bpr_loss, l2_reg, margin_loss, sampled_softmax_loss
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.nn.sparse import csr_row_positions
from graphcf.objectives.base import Batch, Objective, register_objective
from graphcf.objectives.negatives import NEGATIVE_SAMPLERS, NegativeSettings
from graphcf.samplers.negative import PopularityNegativeSampler, UniformNegativeSampler
from graphcf.typing import ITEM, USER

logger = logging.getLogger(__name__)

__all__ = ["PairBatch", "pair_loss", "PairwiseObjective", "NeighborPairwiseObjective", "PairwiseSettings",
           "BPRSettings", "MarginSettings", "SoftmaxSettings"]


def _pair_scores(scorer: Scorer, u: Tensor, items_emb: Tensor) -> Tensor:
    """Score ``u [B, d]`` against ``items_emb [B, d]`` or ``[B, N, d]`` -> ``[B]`` / ``[B, N]``."""
    if items_emb.dim() == 2:
        return scorer(u, items_emb)
    return scorer.score_many(u, items_emb)


def _graph_fingerprint(edge_index: Tensor, num_users: int, num_items: int) -> list:
    """A cheap identity of a training graph (sizes and two order-free sums of its edge keys), for caches."""
    key = edge_index[0].long() * num_items + edge_index[1].long()
    return [int(num_users), int(num_items), int(key.numel()), int(key.sum()), int((key * key % 1_000_000_007).sum())]


class PairBatch(NamedTuple):
    """One pairwise mini-batch.

    Attributes:
        users, pos: ``[B]`` users and their positive items (training edges).
        neg: per-row negatives, ``[B]`` (one each) or ``[B, M]`` (uniform / popularity draws,
            then the PPR hard negatives of the epoch); ``[B, 0]`` when all negatives are shared.
        shared: ``[N]`` negatives shared by every row of the batch (``sampler="shared"``), or ``None``.
        shared_valid: ``[B, N]`` whether ``shared[n]`` is *not* a training positive of ``users[b]``
            (invalid pairs are left out of the loss), or ``None``.
    """

    users: Tensor
    pos: Tensor
    neg: Tensor
    shared: Optional[Tensor] = None
    shared_valid: Optional[Tensor] = None


def pair_loss(name: str, pos: Tensor, neg: Tensor, mask: Optional[Tensor] = None, margin: float = 0.1,
              temperature: float = 1.0) -> Tensor:
    """The pairwise loss ``name`` (``"bpr"``, ``"margin"`` or ``"softmax"``) of positive and negative scores."""
    if name == "bpr":
        return bpr_loss(pos, neg, mask=mask)
    if name == "margin":
        return margin_loss(pos, neg, margin=margin, mask=mask)
    if name == "softmax":
        return sampled_softmax_loss(pos, neg, temperature=temperature, mask=mask)
    raise ValueError(f"unknown pairwise loss {name!r}; choose one of {PAIR_LOSSES}")


class PairwiseObjective(Objective):
    r"""Pairwise ranking over (user, positive, negatives): one epoch visits every training edge once.

    .. math::
        \mathcal{L} = \ell(\hat y_{ui}, \hat y_{uj}) + \lambda \, \Omega(\mathbf{e}_u, \mathbf{e}_i, \mathbf{e}_j)

    with :math:`\ell` BPR (default), PinSAGE's max-margin loss or a sampled softmax
    (:mod:`graphcf.losses`), averaged over the batch's (positive, negative) pairs.

    Negatives, for every encoder:

    * ``sampler="uniform"`` / ``"popularity"``: ``num_negatives`` draws per positive, never a
      training positive of the user;
    * ``sampler="shared"``: ``num_negatives`` uniform items shared by every positive of the
      mini-batch (PinSAGE's trick: only ``num_negatives`` negative embeddings per batch, scored
      against all rows at once); a shared item that is a training positive of a row's user is
      masked out of that row's loss;
    * ``hard_negatives > 0``: in addition, that many personalised-PageRank hard negatives per
      positive (:class:`~graphcf.samplers.ppr.PPRHardNegativeSampler`: items ranked in
      ``ppr_band`` by PPR from the user, never a positive); with ``curriculum``, epoch
      :math:`n` uses :math:`\min(\text{hard\_negatives}, \lfloor (n-1)/\text{curriculum\_every} \rfloor)`
      of them (PinSAGE: epoch :math:`n` adds :math:`n-1` hard negatives).

    Args:
        num_negatives: easy (uniform / popularity / shared) negatives per positive or per batch.
        reg: :math:`\lambda`, weight of :func:`~graphcf.losses.l2_reg` on the batch rows of
            the encoder's regularised embeddings (``Encoder.reg_embeddings``; by default
            the output rows).
        sampler: ``"uniform"``, ``"popularity"`` (weight ``count^alpha``) or ``"shared"``.
        popularity_alpha: exponent of the popularity sampler.
        hard_negatives: PPR hard negatives per positive (the cap, with ``curriculum``).
        curriculum, curriculum_every: the hard-negative schedule (see above).
        ppr_band, ppr_alpha, ppr_iters: the PPR sampler's rank band (``None``: scaled to the
            catalogue, :func:`~graphcf.samplers.ppr.default_ppr_band`), restart probability and
            iterations.
        ppr_cache: file to load the PPR band cache from, or to save it to after computing it
            (``None``: in memory only).
        loss: ``"bpr"``, ``"margin"`` or ``"softmax"``.
        margin: :math:`\Delta` of the max-margin loss.
        temperature: :math:`\tau` of the sampled softmax.
        pair_sampling: which (user, positive) pairs an epoch visits: ``"edge"`` (every training
            edge once, in a random order; RecBole's sampling) or ``"user"`` (as the official
            LightGCN / NGCF code: :math:`|E|` draws of a user uniformly among those with training
            items, each with a uniform random positive of theirs, so every *user* carries the
            same weight in expectation, whatever their degree; the full-ranking metrics
            average over users alike).
        reg_negatives: how the :math:`M` per-positive negatives of a row enter :math:`\Omega`:
            ``"sum"`` (each of them, so :math:`\Omega = \frac{1}{2B}\sum_b \lVert e_u\rVert^2 +
            \lVert e_i\rVert^2 + \sum_{m=1}^{M}\lVert e_{j_m}\rVert^2`) or ``"mean"`` (their
            mean, :math:`\frac{1}{M}\sum_m \lVert e_{j_m}\rVert^2`). The pair loss averages over
            the :math:`M` negatives, so in expectation it is the 1-negative BPR of the official
            LightGCN code for every :math:`M`; only ``"mean"`` keeps its L2 term too (``"sum"``
            adds :math:`M-1` extra uniform item decays). Shared negatives are counted once per
            batch either way.
        fused: with per-row negatives, embed the batch's unique users and items once and score
            the pairs through :meth:`Scorer.score_pairs <graphcf.nn.scorers.Scorer.score_pairs>`
            (for a :class:`~graphcf.nn.scorers.DotScorer`, :func:`~graphcf.nn.functional.gather_dot`:
            no ``[B, 1+M, d]`` gathered rows); the L2 term weights each unique row by its count.
            Same loss and gradients up to float summation order; ``False`` keeps the gathered
            reference path. (default: ``True``)
    """

    def __init__(self, num_negatives: int = 1, reg: float = 1e-4, sampler: str = "uniform",
                 popularity_alpha: float = 0.75, hard_negatives: int = 0, curriculum: bool = False,
                 curriculum_every: int = 1, ppr_band: Optional[Tuple[int, int]] = None, ppr_alpha: float = 0.15,
                 ppr_iters: int = 10, ppr_cache: Optional[str] = None, loss: str = "bpr", margin: float = 0.1,
                 temperature: float = 1.0, pair_sampling: str = "edge", reg_negatives: str = "sum",
                 fused: bool = True) -> None:
        if reg_negatives not in ("sum", "mean"):
            raise ValueError(f"PairwiseObjective: reg_negatives must be 'sum' or 'mean', got {reg_negatives!r}")
        if pair_sampling not in ("edge", "user"):
            raise ValueError(f"PairwiseObjective: pair_sampling must be 'edge' or 'user', got {pair_sampling!r}")
        if sampler not in NEGATIVE_SAMPLERS:
            raise ValueError(f"PairwiseObjective: sampler must be one of {list(NEGATIVE_SAMPLERS)}, got {sampler!r}")
        if loss not in PAIR_LOSSES:
            raise ValueError(f"PairwiseObjective: loss must be one of {PAIR_LOSSES}, got {loss!r}")
        if hard_negatives < 0 or curriculum_every < 1:
            raise ValueError(f"PairwiseObjective: hard_negatives must be >= 0 and curriculum_every >= 1, got "
                             f"{hard_negatives}, {curriculum_every}")
        if curriculum and hard_negatives == 0:
            raise ValueError("PairwiseObjective: curriculum=True needs hard_negatives >= 1 (the cap of the schedule)")
        self.num_negatives = num_negatives
        self.reg = reg
        self.sampler_name = sampler
        self.popularity_alpha = popularity_alpha
        self.hard_negatives = int(hard_negatives)
        self.curriculum = bool(curriculum)
        self.curriculum_every = int(curriculum_every)
        self.ppr_args = {"band": None if ppr_band is None else tuple(ppr_band), "alpha": ppr_alpha,
                         "num_iters": ppr_iters}
        self.ppr_cache = ppr_cache
        self.loss_name = loss
        self.margin = margin
        self.temperature = temperature
        self.pair_sampling = pair_sampling
        self.reg_negatives = reg_negatives
        self.fused = bool(fused)
        self.epoch = 1
        self.hard_sampler: Any = None

    def hard_count(self, epoch: int) -> int:
        """Hard negatives per positive in epoch ``epoch`` (1-based) under the schedule."""
        if not self.curriculum:
            return self.hard_negatives
        return min(self.hard_negatives, (int(epoch) - 1) // self.curriculum_every)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def setup(self, data: HeteroData) -> None:
        nu, ni = num_users_items(data)
        ei = train_edge_index(data)
        if self.sampler_name == "popularity":
            self.sampler: UniformNegativeSampler = PopularityNegativeSampler(ei, nu, ni, alpha=self.popularity_alpha)
        else:
            self.sampler = UniformNegativeSampler(ei, nu, ni)
        if self.hard_negatives > 0 and self.hard_sampler is None:
            self.hard_sampler = self._ppr_sampler(ei, nu, ni)
        if self.sampler_name == "shared":  # item -> users CSR, for the shared negatives' validity masks
            self._item_users = user_item_csr(ei.flip(0), ni, nu)
        if self.pair_sampling == "user":  # user -> items CSR rows, for user-uniform pair draws
            csr = user_item_csr(ei, nu, ni)
            self._user_ptr = csr.crow_indices()
            self._user_items = csr.col_indices()
            self._active_users = torch.nonzero(self._user_ptr[1:] > self._user_ptr[:-1]).flatten()

    def shared_valid(self, users: Tensor, shared: Tensor) -> Tensor:
        """``[B, N]``: whether ``shared[n]`` is not a training positive of ``users[b]``.

        Walks the shared items' user lists (``N`` times the mean item degree entries) instead of
        looking up all ``B * N`` pairs.
        """
        csr = self._item_users
        uniq, inv = torch.unique(users, return_inverse=True)
        slot = torch.full((csr.shape[1],), -1, dtype=torch.long)
        slot[uniq] = torch.arange(len(uniq))
        col, idx = csr_row_positions(csr.crow_indices(), shared)
        row = slot[csr.col_indices()[idx].long()]
        hit = row >= 0
        invalid = torch.zeros(len(uniq), len(shared), dtype=torch.bool)
        invalid[row[hit], col[hit]] = True
        return ~invalid[inv]

    def _ppr_sampler(self, ei: Tensor, nu: int, ni: int) -> Any:
        from graphcf.samplers.ppr import PPRHardNegativeSampler

        path = Path(self.ppr_cache) if self.ppr_cache else None
        meta = {"graph": _graph_fingerprint(ei, nu, ni),
                "args": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.ppr_args.items()}}
        side = path.with_name(path.name + ".json") if path is not None else None
        if path is not None and path.exists() and side is not None and side.exists():
            if json.loads(side.read_text(encoding="utf-8")) == meta:
                cached = PPRHardNegativeSampler.load(path)
                logger.info("PPR hard negatives loaded from %s (band %s)", path, cached.band)
                return cached
            logger.warning("PPR cache %s was computed for another graph or other PPR settings; recomputing", path)
        t0 = time.perf_counter()
        sampler = PPRHardNegativeSampler(ei, nu, ni, **self.ppr_args)
        logger.info("PPR hard negatives for %d users (band %s) in %.1f s", nu, sampler.band, time.perf_counter() - t0)
        if path is not None and side is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            sampler.save(path)
            tmp = side.with_name(side.name + ".tmp")
            tmp.write_text(json.dumps(meta), encoding="utf-8")
            os.replace(tmp, side)
        return sampler

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[PairBatch]:
        ei = train_edge_index(data)
        hard = self.hard_count(self.epoch)
        ni = self.sampler.num_items
        for users, pos in self._pairs(ei, batch_size, generator):
            if self.sampler_name == "shared":
                shared = torch.randint(0, ni, (self.num_negatives,), generator=generator)
                valid = self.shared_valid(users, shared)
                neg = users.new_zeros(len(users), 0)
            else:
                shared = valid = None
                neg = self.sampler.sample(users, self.num_negatives, generator=generator)
            if hard > 0:
                h = self.hard_sampler.sample(users, hard, generator=generator)
                neg = torch.cat([neg.view(len(users), -1), h.view(len(users), -1)], dim=1)
            yield PairBatch(users, pos, neg, shared, valid)

    def _pairs(self, ei: Tensor, batch_size: int, generator: torch.Generator) -> Iterator[Tuple[Tensor, Tensor]]:
        """One epoch of (users, positives) batches under ``pair_sampling``."""
        if self.pair_sampling == "edge":
            for idx in torch.randperm(ei.size(1), generator=generator).split(batch_size):
                yield ei[0, idx], ei[1, idx]
            return
        if not hasattr(self, "_user_ptr"):
            raise RuntimeError("PairwiseObjective: call setup(data) before batches() with pair_sampling='user'")
        active, ptr = self._active_users, self._user_ptr
        for start in range(0, ei.size(1), batch_size):
            n = min(batch_size, ei.size(1) - start)
            users = active[torch.randint(0, len(active), (n,), generator=generator)]
            lo, deg = ptr[users], ptr[users + 1] - ptr[users]
            offset = (torch.rand(n, generator=generator, dtype=torch.float64) * deg).long().clamp_max_(deg - 1)
            yield users, self._user_items[lo + offset].long()

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        b = batch if isinstance(batch, PairBatch) else PairBatch(*batch)
        users, pos, neg = b.users, b.pos, b.neg
        if self.fused and b.shared is None and neg.numel():
            return self._loss_unique(encoder, scorer, data, users, pos, neg)
        n_shared = 0 if b.shared is None else len(b.shared)
        parts = [pos] + ([b.shared] if b.shared is not None else []) + [neg.reshape(-1)]
        emb = encoder.embed_rows(data, users, torch.cat(parts))
        u, p = emb.user, emb.item[: len(pos)]
        e_shared = emb.item[len(pos): len(pos) + n_shared]
        n = emb.item[len(pos) + n_shared:].view(*neg.shape, emb.item.shape[-1])
        s_pos = scorer(u, p)
        if b.shared is None:  # per-row negatives only: [B] or [B, M]
            s_neg, mask = _pair_scores(scorer, u, n), None
        else:
            blocks, masks = [scorer.score_all(u, e_shared)], [b.shared_valid]
            if neg.numel():
                blocks.append(scorer.score_many(u, n))
                masks.append(torch.ones(neg.shape, dtype=torch.bool, device=neg.device))
            s_neg, mask = torch.cat(blocks, dim=1), torch.cat(masks, dim=1)
        loss = pair_loss(self.loss_name, s_pos, s_neg, mask, margin=self.margin, temperature=self.temperature)
        if self.reg > 0:
            # the default reg_embeddings are exactly the rows gathered above: reuse them
            if encoder.reg_rows == "output":
                rows = (u, p, e_shared, n) if n_shared else (u, p, n)
                rows = tuple(r for r in rows if r.numel())
            else:
                items = (pos, b.shared, neg) if n_shared else (pos, neg)
                rows = encoder.reg_embeddings(emb, users, *items)
            m = neg.shape[1] if neg.dim() == 2 and neg.numel() else 1
            loss = loss + self.reg * self._gathered_penalty(rows, m, len(users))
        loss = self.add_aux(loss, emb)
        return loss

    def _gathered_penalty(self, rows: Sequence[Tensor], m: int, batch_size: int) -> Tensor:
        """L2 term on gathered batch rows (per-row negatives last), averaging the negatives for
        ``reg_negatives="mean"``."""
        if self.reg_negatives == "mean" and m > 1 and len(rows) > 1:
            *rest, neg_rows = rows  # the per-row negatives come last
            return l2_reg(*rest, batch_size=batch_size) + l2_reg(neg_rows, batch_size=batch_size) / m
        return l2_reg(*rows, batch_size=batch_size)

    def _loss_unique(self, encoder: Encoder, scorer: Scorer, data: HeteroData, users: Tensor, pos: Tensor,
                     neg: Tensor) -> Tensor:
        """:meth:`loss` for per-row negatives, on the batch's unique rows: the encoder embeds each
        distinct user and item once, :meth:`Scorer.score_pairs` scores the (user, item) pairs
        through inverse indices, and the L2 penalty weights each unique row by how often the
        batch uses it. The same loss as the gathered path (up to float summation order); with a
        dot-product scorer, without its ``[B, 1+M, d]`` temporaries."""
        bsz = len(users)
        items = torch.cat([pos.view(bsz, 1), neg.view(bsz, -1)], dim=1)  # [B, 1+M]
        m = items.shape[1] - 1
        uu, inv_u = torch.unique(users, return_inverse=True)
        ui, inv_i = torch.unique(items, return_inverse=True)
        emb = encoder.embed_rows(data, uu, ui)
        s = scorer.score_pairs(emb.user, emb.item, inv_u, inv_i)
        s_pos, s_neg = s[:, 0], s[:, 1:]
        if neg.dim() == 1:
            s_neg = s_neg.squeeze(1)
        loss = pair_loss(self.loss_name, s_pos, s_neg, None, margin=self.margin, temperature=self.temperature)
        if self.reg > 0:
            rows = [emb.user, emb.item] if encoder.reg_rows == "output" else list(encoder.reg_embeddings(emb, uu, ui))
            if len(rows) == 2 and rows[0].shape[0] == len(uu) and rows[1].shape[0] == len(ui):
                # one row per unique id: weight each by its count in the batch
                w_neg = 1.0 / m if self.reg_negatives == "mean" and m > 1 else 1.0
                w_u = torch.bincount(inv_u, minlength=len(uu))
                w_i = torch.bincount(inv_i[:, 0], minlength=len(ui)).to(rows[1].dtype) + \
                    w_neg * torch.bincount(inv_i[:, 1:].reshape(-1), minlength=len(ui)).to(rows[1].dtype)
                penalty = l2_reg(*rows, batch_size=bsz, weights=(w_u, w_i))
            else:  # an override that does not return one row per id: ask it for the batch's rows
                penalty = self._gathered_penalty(list(encoder.reg_embeddings(emb, users, pos, neg)), m, bsz)
            loss = loss + self.reg * penalty
        loss = self.add_aux(loss, emb)
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

    def check_encoder(self, encoder: Encoder) -> None:
        """``encoder`` must declare ``supports_sampled_subgraphs`` and have at most ``len(num_neighbors)`` layers."""
        if not encoder.supports_sampled_subgraphs:
            note = encoder.sampling_note
            raise ValueError(f"{type(encoder).__name__} does not run on sampled subgraphs; use sampling='full'"
                             + (f" ({note})" if note else ""))
        depth = int(encoder.num_layers)
        if len(self.loader.num_neighbors) < depth:
            raise ValueError(f"num_neighbors {self.loader.num_neighbors} samples {len(self.loader.num_neighbors)} hops "
                             f"but {type(encoder).__name__} has {depth} layers")

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        from graphcf.samplers.neighbor import batch_triples

        (sub,) = batch
        self.check_encoder(encoder)
        users, pos, neg = batch_triples(sub)
        gu, gp, gn = sub[USER].n_id[users], sub[ITEM].n_id[pos], sub[ITEM].n_id[neg]
        valid = ~self.positives.is_positive(gu.repeat_interleave(neg.size(1)), gn.flatten()).view_as(gn)
        emb = encoder(sub)
        u, p, n = emb.user[users], emb.item[pos], emb.item[neg]
        loss = bpr_loss(_pair_scores(scorer, u, p), _pair_scores(scorer, u, n), mask=valid)
        if self.reg > 0:
            rows = (u, p, n) if encoder.reg_rows == "output" else encoder.reg_embeddings(emb, gu, gp, gn)
            loss = loss + self.reg * l2_reg(*rows, batch_size=len(users))
        loss = self.add_aux(loss, emb)
        return loss


@dataclass
class PairwiseSettings(NegativeSettings):
    r"""Settings of the pairwise objectives (their negatives: :class:`NegativeSettings`).

    Args:
        reg: :math:`\lambda`, weight of the L2 penalty :func:`~graphcf.losses.l2_reg` on the batch rows the
            encoder declares (``Encoder.reg_rows``). (default: ``1e-4``)
        pair_sampling: ``"edge"`` (every training edge once per epoch, RecBole) or ``"user"`` (``|E|`` draws
            of a uniform user, then one of their positives, as the official LightGCN / NGCF code).
        reg_negatives: ``"sum"`` (every per-positive negative's L2) or ``"mean"`` (their mean: the official
            1-negative BPR's L2 term in expectation). (default: ``"sum"``)
    """

    reg: float = 1e-4
    pair_sampling: str = "edge"
    reg_negatives: str = "sum"

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.reg < 0:
            raise ValueError(f"{name}.reg must be >= 0, got {self.reg}")
        if self.reg_negatives not in ("sum", "mean"):
            raise ValueError(f"{name}.reg_negatives must be 'sum' or 'mean', got {self.reg_negatives!r}")
        if self.pair_sampling not in ("edge", "user"):
            raise ValueError(f"{name}.pair_sampling must be 'edge' or 'user', got {self.pair_sampling!r}")


@dataclass
class BPRSettings(PairwiseSettings):
    """Settings of ``bpr`` (Rendle et al. 2009): :class:`PairwiseSettings`; the only objective that also
    trains on neighbour-sampled subgraphs (uniform negatives, edge pairs, no hard negatives)."""

    def check_training(self, sampling: str) -> None:
        if sampling == "full":
            return
        if sampling != "neighbor":
            raise ValueError(f"sampling must be 'full' or 'neighbor', got {sampling!r}")
        if self.sampler != "uniform" or self.hard_negatives:
            raise ValueError("sampling='neighbor' trains BPR with uniform negatives only "
                             f"(got sampler={self.sampler!r}, hard_negatives={self.hard_negatives})")
        for key, default in (("pair_sampling", "edge"), ("reg_negatives", "sum")):
            if getattr(self, key) != default:  # would be silently ignored there
                raise ValueError(f"objective.{key}={getattr(self, key)!r} applies to full-graph training only "
                                 "(sampling='neighbor' samples edges and sums the L2)")


@dataclass
class MarginSettings(PairwiseSettings):
    r"""Settings of ``margin`` (PinSAGE's max-margin loss). Args: ``margin``: :math:`\Delta` (default ``0.1``)."""

    margin: float = 0.1


@dataclass
class SoftmaxSettings(PairwiseSettings):
    r"""Settings of ``softmax`` (sampled softmax). Args: ``temperature``: :math:`\tau` (default ``1.0``)."""

    temperature: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temperature <= 0:
            raise ValueError(f"SoftmaxSettings.temperature must be > 0, got {self.temperature}")


def _build_pairwise(s: PairwiseSettings, sampling: str, num_neighbors: Tuple[int, ...], loss: str,
                    margin: float = 0.1, temperature: float = 1.0) -> Objective:
    if sampling == "neighbor":
        return NeighborPairwiseObjective(num_neighbors, s.num_negatives, s.reg)
    return PairwiseObjective(s.num_negatives, s.reg, sampler=s.sampler, popularity_alpha=s.popularity_alpha,
                             hard_negatives=s.hard_negatives, curriculum=s.curriculum,
                             curriculum_every=s.curriculum_every, ppr_band=s.ppr_band or None,
                             ppr_alpha=s.ppr_alpha, ppr_iters=s.ppr_iters, ppr_cache=s.ppr_cache or None,
                             loss=loss, margin=margin, temperature=temperature, pair_sampling=s.pair_sampling,
                             reg_negatives=s.reg_negatives)


register_objective("bpr", BPRSettings, lambda s, sampling, nn: _build_pairwise(s, sampling, nn, "bpr"),
                   "BPR (Rendle et al. 2009): -log sigmoid(s_ui - s_uj), L2 on the batch rows")
register_objective("margin", MarginSettings,
                   lambda s, sampling, nn: _build_pairwise(s, sampling, nn, "margin", margin=s.margin),
                   "PinSAGE's max-margin loss: max(0, s_uj - s_ui + margin)")
register_objective("softmax", SoftmaxSettings,
                   lambda s, sampling, nn: _build_pairwise(s, sampling, nn, "softmax", temperature=s.temperature),
                   "sampled softmax over the positive and the negatives, scores / temperature")
