"""Mult-VAE / Mult-DAE's multinomial likelihood over user rows (``multinomial``): settings, objective and
registry entry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, train_edge_index, user_item_csr
from graphcf.losses import multinomial_nll
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.objectives.base import Batch, Objective, ObjectiveSettings, register_objective

__all__ = ["MultinomialObjective", "MultinomialSettings", "anneal_beta"]


def anneal_beta(step: int, total_steps: int, cap: float) -> float:
    r"""Linear KL annealing (Liang et al. 2018): :math:`\beta = \min(\text{cap}, \text{step} / \text{total})`."""
    if total_steps <= 0:
        return cap
    return min(cap, step / total_steps)


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
        if emb.aux:
            weights = {**self.aux_weights, "kl": self.beta * float(self.aux_weights.get("kl", 1.0))}
            loss = self.add_aux(loss, emb, weights)
        if encoder.training:
            self.step += 1
        return loss

    def state_dict(self) -> Dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.step = int(state.get("step", 0))


@dataclass
class MultinomialSettings(ObjectiveSettings):
    """Settings of ``multinomial`` (Liang et al. 2018).

    Args:
        anneal_steps: updates over which the KL weight grows linearly (paper: 200,000). (default: ``200000``)
        anneal_cap: its cap (paper: 0.2). (default: ``0.2``)
    """

    anneal_steps: int = 200_000
    anneal_cap: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.anneal_steps < 0 or self.anneal_cap < 0:
            raise ValueError(f"MultinomialSettings: anneal_steps and anneal_cap must be >= 0, got "
                             f"{self.anneal_steps}, {self.anneal_cap}")


register_objective("multinomial", MultinomialSettings,
                   lambda s, sampling, nn: MultinomialObjective(s.anneal_steps, s.anneal_cap),
                   "multinomial log-likelihood of user rows plus the annealed KL term (Mult-VAE)")
