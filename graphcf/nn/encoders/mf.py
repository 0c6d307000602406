"""Matrix factorisation (BPR-MF) as a zero-hop encoder."""
from __future__ import annotations

from typing import Optional

from torch import Tensor
from torch import nn
from torch_geometric.data import HeteroData

from graphcf.nn.encoders.base import Encoder
from graphcf.typing import UserItemEmbeddings


class MFEncoder(Encoder):
    r"""Zero-hop ID embeddings: :math:`\mathbf{e}_u = \mathbf{P}_u`, :math:`\mathbf{e}_i = \mathbf{Q}_i`.

    Paired with a dot scorer and the BPR loss this is BPR-MF (Rendle et al., UAI 2009,
    arXiv:1205.2618): :math:`\hat y_{ui} = \mathbf{P}_u^\top \mathbf{Q}_i`.

    Args:
        num_users, num_items: universe sizes.
        dim: embedding size. Default: ``64``.
        init_std: standard deviation of the normal initialisation. Default: ``0.1``.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, init_std: float = 0.1) -> None:
        super().__init__(num_users, num_items)
        self.dim = dim
        self.init_std = init_std
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        self.check_graph(data)
        return UserItemEmbeddings(self.select_users(self.user_emb.weight, users), self.item_emb.weight)

    def extra_repr(self) -> str:
        return f"{self.num_users}, {self.num_items}, dim={self.dim}"
