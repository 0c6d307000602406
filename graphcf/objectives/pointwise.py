"""NCF's pointwise log loss with sampled negatives (``bce``): settings, objective and registry entry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, train_edge_index
from graphcf.losses import bce_loss, l2_reg
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.objectives.base import Batch, Objective, ObjectiveSettings, register_objective
from graphcf.samplers.negative import UniformNegativeSampler

__all__ = ["PointwiseObjective", "BCESettings"]


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
        loss = self.add_aux(loss, emb)
        return loss


@dataclass
class BCESettings(ObjectiveSettings):
    """Settings of ``bce`` (He et al. 2017).

    Args:
        num_negatives: fresh uniform negatives per positive each epoch (paper: 4). (default: ``4``)
        reg: weight of the L2 penalty on the batch rows (paper: none). (default: ``0.0``)
    """

    num_negatives: int = 4
    reg: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_negatives < 1 or self.reg < 0:
            raise ValueError(f"BCESettings: num_negatives must be >= 1 and reg >= 0, got {self.num_negatives}, "
                             f"{self.reg}")


register_objective("bce", BCESettings, lambda s, sampling, nn: PointwiseObjective(s.num_negatives, s.reg),
                   "NCF's pointwise log loss, num_negatives sampled negatives per positive")
