r"""PinSAGE's convolution with importance pooling (Ying et al., KDD 2018, arXiv:1806.01973, Algorithm 1)."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear
from torch_geometric.utils import is_torch_sparse_tensor

from graphcf.nn.sparse import csr_row_ids, spmm, weighted_degree

PairTensor = Tuple[Tensor, Tensor]

__all__ = ["PinSAGEConv"]


class PinSAGEConv(MessagePassing):
    r"""The PinSAGE convolution ("Graph Convolutional Neural Networks for Web-Scale Recommender
    Systems", Ying et al., KDD 2018, Algorithm 1 CONVOLVE) with importance pooling:

    .. math::
        \mathbf{n}_v = \frac{\sum_{u \in \mathcal{N}(v)} \alpha_{vu}\,
                       \operatorname{ReLU}(\mathbf{Q}\mathbf{h}_u + \mathbf{q})}
                      {\sum_{u \in \mathcal{N}(v)} \alpha_{vu}}, \qquad
        \mathbf{h}_v^{\text{new}} = \frac{\operatorname{ReLU}(\mathbf{W}[\mathbf{h}_v \,\|\, \mathbf{n}_v] + \mathbf{w})}
                                         {\lVert \operatorname{ReLU}(\mathbf{W}[\mathbf{h}_v \,\|\, \mathbf{n}_v] + \mathbf{w}) \rVert_2}

    where :math:`\mathcal{N}(v)` is the importance neighbourhood of :math:`v` (the most visited
    nodes of random walks from :math:`v`, :func:`graphcf.samplers.random_walk.importance_neighborhoods`)
    and :math:`\alpha_{vu}` the importance weights (normalised visit counts). A node without
    neighbours gets :math:`\mathbf{n}_v = \mathbf{0}`. The neighbour transform
    :math:`\operatorname{ReLU}(\mathbf{Q}\mathbf{h}_u + \mathbf{q})` is computed once per source
    node, not once per edge.

    Args:
        in_channels: size of :math:`\mathbf{h}` (an int, or ``(src, dst)`` sizes for a bipartite graph).
        out_channels: size of :math:`\mathbf{h}^{\text{new}}`.
        hidden_channels: size of the neighbour messages :math:`\mathbf{n}_v`. (default: ``out_channels``)
        normalize: L2-normalise the output. (default: ``True``)
        bias: learn the biases :math:`\mathbf{q}`, :math:`\mathbf{w}`. (default: ``True``)
        **kwargs: passed on to :class:`~torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** ``x [N, F]`` or ``(x_src [N_s, F_s], x_dst [N_d, F_d])``; ``edge_index [2, E]``
          (row 0 the neighbour, row 1 the target) with ``edge_weight [E]`` importance weights
          (``None``: all ones, a plain mean), or a torch sparse CSR ``adj_t [N_d, N_s]`` whose values
          are the weights, with optionally its ``transpose [N_s, N_d]`` (the fast path: one MKL
          sparse product each way instead of per-edge gather / scatter; 5x faster steps on citeulike).
        - **output:** ``[N_d, out_channels]``.
    """

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int,
                 hidden_channels: Optional[int] = None, normalize: bool = True, bias: bool = True,
                 **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        if isinstance(in_channels, int):
            in_channels = (in_channels, in_channels)
        self.in_channels = in_channels
        self.out_channels = int(out_channels)
        self.hidden_channels = int(hidden_channels or out_channels)
        self.normalize = normalize
        self.lin_msg = Linear(in_channels[0], self.hidden_channels, bias=bias, weight_initializer="glorot")
        self.lin_out = Linear(in_channels[1] + self.hidden_channels, self.out_channels, bias=bias,
                              weight_initializer="glorot")
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin_msg.reset_parameters()
        self.lin_out.reset_parameters()

    def forward(self, x: Union[Tensor, PairTensor], edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                transpose: Optional[Tensor] = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        x_src, x_dst = x
        if is_torch_sparse_tensor(edge_index):
            return self._forward_sparse(x_src, x_dst, edge_index, transpose)
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"PinSAGEConv: edge_index must be [2, E], got {tuple(edge_index.shape)}")
        if edge_weight is None:
            edge_weight = torch.ones(edge_index.size(1), dtype=x_src.dtype, device=x_src.device)
        elif edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"PinSAGEConv: edge_weight must be [{edge_index.size(1)}], got {tuple(edge_weight.shape)}")
        msg = F.relu(self.lin_msg(x_src))
        size = (x_src.size(0), x_dst.size(0))
        pooled = self.propagate(edge_index, x=(msg, None), edge_weight=edge_weight, size=size)
        wsum = weighted_degree(edge_index[1], edge_weight.to(pooled.dtype), x_dst.size(0))
        pooled = pooled / wsum.clamp_min(torch.finfo(pooled.dtype).tiny).unsqueeze(-1)
        out = F.relu(self.lin_out(torch.cat([x_dst, pooled], dim=-1)))
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def _forward_sparse(self, x_src: Tensor, x_dst: Tensor, adj: Tensor, transpose: Optional[Tensor]) -> Tensor:
        if tuple(adj.shape) != (x_dst.size(0), x_src.size(0)):
            raise ValueError(f"PinSAGEConv: adj_t must be [num_dst={x_dst.size(0)}, num_src={x_src.size(0)}], "
                             f"got {tuple(adj.shape)}")
        if adj.layout != torch.sparse_csr:
            adj = adj.to_sparse_csr()
        msg = F.relu(self.lin_msg(x_src))
        pooled = spmm(adj, transpose, msg) if transpose is not None else torch.sparse.mm(adj, msg)
        wsum = weighted_degree(csr_row_ids(adj), adj.values().to(pooled.dtype), adj.shape[0])
        pooled = pooled / wsum.clamp_min(torch.finfo(pooled.dtype).tiny).unsqueeze(-1)
        out = F.relu(self.lin_out(torch.cat([x_dst, pooled.to(x_dst.dtype)], dim=-1)))
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1).to(x_j.dtype) * x_j

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels[0]}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, normalize={self.normalize})")
