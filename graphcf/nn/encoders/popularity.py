"""Popularity baseline as a zero-hop encoder."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.nn.encoders.base import Encoder
from graphcf.typing import UserItemEmbeddings


class PopularityEncoder(Encoder):
    r"""Recommends the most interacted items to everybody.

    With a dot-product scorer, :math:`s(u, i) = 1 \cdot c_i` where :math:`c_i` is the
    number of training interactions of item :math:`i` (a ``[I, 1]`` buffer filled by
    :meth:`fit_statistics`, saved in ``state_dict``). Every user embedding is ``[1]``.
    It has no trainable parameters: "training" it is counting.
    """

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__(num_users, num_items)
        self.register_buffer("item_count", torch.zeros(num_items, 1))

    def fit_statistics(self, data: HeteroData) -> None:
        edge_index = self.check_graph(data)
        self.item_count.copy_(torch.bincount(edge_index[1], minlength=self.num_items).float().unsqueeze(1))

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        self.check_graph(data)
        n = self.num_users if users is None else len(users)
        user = torch.ones(n, 1, device=self.item_count.device)
        return UserItemEmbeddings(user, self.item_count)
