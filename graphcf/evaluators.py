"""Evaluators: what the trainer validates and tests with, passed to it as an argument.

* :class:`FullRankingEvaluator`: every user against every item, seen items masked (LightGCN / NGCF
  protocol, :func:`graphcf.evaluate.full_ranking_model`);
* :class:`NCFEvaluator`: each held-out item ranked among ``num_negatives`` sampled ones (He et al.
  2017, :func:`graphcf.evaluate.ncf_protocol_model`); the negatives are drawn once per split with the
  evaluator's seed (or taken from the graph's ``{split}_neg_items``) and reused at every validation.

Both score any :class:`~graphcf.model.Recommender` through its ranker, so trained and training-free
models are evaluated alike.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data import has_split, num_users_items, split_edge_index
from graphcf.evaluate import full_ranking_model, ncf_protocol_model, sample_ncf_negatives
from graphcf.model import Recommender
from graphcf.typing import INTERACTS

__all__ = ["Evaluator", "FullRankingEvaluator", "NCFEvaluator"]


class Evaluator:
    """Base class: :meth:`evaluate` ``(model, data, split) -> {metric: value}``."""

    def evaluate(self, model: Recommender, data: HeteroData, split: str) -> Dict[str, float]:  # pragma: no cover
        raise NotImplementedError


class FullRankingEvaluator(Evaluator):
    """Full ranking at cut-offs ``ks`` (see :func:`graphcf.evaluate.full_ranking`).

    Args:
        ks: cut-offs. mask_splits: splits to mask (default: train, plus val when testing).
        max_chunk_bytes: memory cap of one chunk's score block. progress: a progress bar over chunks.
    """

    def __init__(self, ks: Iterable[int] = (20,), mask_splits: Optional[Sequence[str]] = None,
                 max_chunk_bytes: int = 256 * 2**20, progress: bool = False) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.mask_splits = mask_splits
        self.max_chunk_bytes = int(max_chunk_bytes)
        self.progress = progress

    @torch.no_grad()
    def evaluate(self, model: Recommender, data: HeteroData, split: str) -> Dict[str, float]:
        ranker = model.ranker(data)
        return full_ranking_model(ranker, data, split=split, ks=self.ks, mask_splits=self.mask_splits,
                                  max_chunk_bytes=self.max_chunk_bytes, progress=self.progress)


class NCFEvaluator(Evaluator):
    """The NCF protocol: HR@K and NDCG@K of each held-out edge ranked among ``num_negatives`` items the
    user never interacted with (ties count against the positive).

    Args:
        ks: cut-offs (paper: 10). num_negatives: sampled negatives per held-out edge (paper: 99).
        seed: seed of the negatives, drawn once per split and kept for every later call.
    """

    def __init__(self, ks: Iterable[int] = (10,), num_negatives: int = 99, seed: int = 0) -> None:
        self.ks = tuple(int(k) for k in ks)
        self.num_negatives, self.seed = int(num_negatives), int(seed)
        self._sets: Dict[str, Tuple[Tensor, Tensor, Tensor]] = {}

    def eval_set(self, data: HeteroData, split: str) -> Tuple[Tensor, Tensor, Tensor]:
        """``(users [N], positives [N], negatives [N, M])`` of ``split`` (sampled on first use)."""
        if split not in self._sets:
            held = split_edge_index(data, split).cpu()
            store = data[INTERACTS]
            key = f"{split}_neg_items"
            if key in store:
                neg = store[key].cpu()
                if neg.shape[0] != held.shape[1]:
                    raise ValueError(f"NCFEvaluator: {key} has {neg.shape[0]} rows but split '{split}' has "
                                     f"{held.shape[1]} edges")
            else:
                _, ni = num_users_items(data)
                others = [split_edge_index(data, s).cpu() for s in ("train", "val", "test")
                          if s != split and has_split(data, s)]
                known = torch.cat(others, dim=1) if others else held[:, :0]
                gen = torch.Generator().manual_seed(self.seed + (0 if split == "val" else 1))
                neg = sample_ncf_negatives(known, held[0], held[1], ni, self.num_negatives, generator=gen)
            self._sets[split] = (held[0], held[1], neg)
        return self._sets[split]

    def set_eval_set(self, split: str, users: Tensor, pos: Tensor, neg: Tensor) -> None:
        """Use the given rows for ``split`` (e.g. negatives shared with another run)."""
        self._sets[split] = (users, pos, neg)

    @torch.no_grad()
    def evaluate(self, model: Recommender, data: HeteroData, split: str) -> Dict[str, float]:
        users, pos, neg = self.eval_set(data, split)
        return ncf_protocol_model(model.ranker(data), users, pos, neg, ks=self.ks)
