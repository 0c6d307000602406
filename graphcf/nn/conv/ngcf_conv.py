r"""NGCF's graph convolution (Wang et al., SIGIR 2019) on the bipartite user-item graph."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import is_sparse, spmm as pyg_spmm

from graphcf.nn.conv.light_conv import sparse_sym_norm
from graphcf.nn.sparse import bipartite_sym_norm, spmm, weighted_degree

PairTensor = Tuple[Tensor, Tensor]

#: the two forms of the layer: the paper's eq. (3)-(4) and the authors' released code
VARIANTS = ("paper", "authors")


class NGCFConv(MessagePassing):
    r"""Embedding propagation of NGCF (Wang et al., "Neural Graph Collaborative Filtering",
    SIGIR 2019, arXiv:1905.08108), eq. (3)-(4), for target nodes :math:`u` and their source
    neighbours :math:`i`:

    .. math::
        \mathbf{e}_u' = \operatorname{LeakyReLU}\Big(\mathbf{W}_1 \mathbf{e}_u
        + \sum_{i \in \mathcal{N}(u)} p_{ui} \big(\mathbf{W}_1 \mathbf{e}_i
        + \mathbf{W}_2 (\mathbf{e}_i \odot \mathbf{e}_u)\big)\Big),
        \qquad p_{ui} = \frac{1}{\sqrt{|\mathcal{N}_u|\,|\mathcal{N}_i|}},

    computed as :math:`\operatorname{LeakyReLU}(\mathbf{W}_1(\mathbf{e}_u + \mathbf{s}_u) + \mathbf{b}_1
    + \mathbf{W}_2(\mathbf{s}_u \odot \mathbf{e}_u) + \mathbf{b}_2)` with the normalised neighbour sum
    :math:`\mathbf{s}_u = \sum_i p_{ui} \mathbf{e}_i` (one sparse product; the element-wise term
    factors because :math:`\mathbf{e}_u` is the same for all of :math:`u`'s messages). The biases
    are those of the authors' code. The same weights serve users and items (call the layer once
    per direction).

    ``variant="authors"`` is the layer of the authors' released TensorFlow code instead (its
    ``_create_ngcf_embed`` with the default ``adj_type="norm"``): the neighbourhood is averaged
    *with* the node itself, :math:`\hat{\mathbf{s}}_u = \frac{1}{d_u + 1}\big(\mathbf{e}_u +
    \sum_{i \in \mathcal{N}(u)} w_{ui}\,\mathbf{e}_i\big)` (the rows of
    :math:`(\mathbf{D} + \mathbf{I})^{-1}(\mathbf{A} + \mathbf{I})`), and the two terms get a
    LeakyReLU each:

    .. math::
        \mathbf{e}_u' = \operatorname{LeakyReLU}\big(\mathbf{W}_1 \hat{\mathbf{s}}_u + \mathbf{b}_1\big)
        + \operatorname{LeakyReLU}\big(\mathbf{W}_2 (\hat{\mathbf{s}}_u \odot \mathbf{e}_u) + \mathbf{b}_2\big).

    Args:
        in_channels: input size :math:`F` (source and target).
        out_channels: output size.
        negative_slope: of the LeakyReLU. (default: ``0.2``)
        normalize: apply :math:`p_{ui}` (``False``: edge weights / adjacency values as given).
            (default: ``True``)
        bias: learn :math:`\mathbf{b}_1, \mathbf{b}_2`. (default: ``True``)
        variant: ``"paper"`` or ``"authors"`` (above). With ``normalize=False`` the
            ``"authors"`` form takes the adjacency values as the neighbours' weights
            :math:`w_{ui}/(d_u+1)` and needs ``self_weight`` :math:`1/(d_u+1)` per target node.
            (default: ``"paper"``)
        **kwargs: passed on to :class:`~torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** ``x = (x_src [N_s, F], x_dst [N_d, F])``; ``edge_index [2, E]`` or a
          sparse ``adj_t [N_d, N_s]``; ``edge_weight [E]`` (optional); ``transpose [N_s, N_d]``
          (optional, torch sparse ``adj_t`` only: the precomputed transpose for the backward);
          ``self_weight [N_d]`` (``variant="authors"`` with ``normalize=False`` only).
        - **output:** ``[N_d, out_channels]``.
    """

    def __init__(self, in_channels: int, out_channels: int, negative_slope: float = 0.2, normalize: bool = True,
                 bias: bool = True, variant: str = "paper", **kwargs: Any) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"NGCFConv: variant must be one of {VARIANTS}, got {variant!r}")
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.variant = variant
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.negative_slope = float(negative_slope)
        self.normalize = normalize
        self.lin1 = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin2 = nn.Linear(in_channels, out_channels, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin1, self.lin2):
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def neighbour_sum(self, x: PairTensor, edge_index: Any, edge_weight: Optional[Tensor] = None,
                      transpose: Optional[Tensor] = None, normalize: Optional[bool] = None) -> Tensor:
        r""":math:`\mathbf{s} = \sum_i p_{ui} \mathbf{e}_i` for every target node (``[N_d, F]``);
        ``normalize`` overrides the layer's own flag (``False``: the weights as given)."""
        normalize = self.normalize if normalize is None else normalize
        num_src, num_dst = x[0].size(0), x[1].size(0)
        if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
            if normalize:
                edge_weight = bipartite_sym_norm(edge_index, edge_weight, (num_src, num_dst), dtype=x[0].dtype)
            return self.propagate(edge_index, x=x, edge_weight=edge_weight, size=(num_src, num_dst))
        if edge_weight is not None:
            raise ValueError("NGCFConv: edge_weight goes with an edge_index; a sparse adjacency carries its values")
        shape = tuple(edge_index.sizes() if hasattr(edge_index, "sizes") else edge_index.shape)[:2]
        if shape != (num_dst, num_src):
            raise ValueError(f"NGCFConv: adj_t must be [num_dst={num_dst}, num_src={num_src}], got {list(shape)}")
        if transpose is not None and not normalize and isinstance(edge_index, Tensor):
            return spmm(edge_index, transpose, x[0])
        if normalize:
            if not isinstance(edge_index, Tensor):
                raise TypeError("NGCFConv: normalize=True needs an edge_index or a torch sparse adj_t")
            edge_index = sparse_sym_norm(edge_index)
        return self.propagate(edge_index, x=x, edge_weight=None, size=(num_src, num_dst))

    def self_mean(self, x: PairTensor, edge_index: Any, edge_weight: Optional[Tensor] = None,
                  transpose: Optional[Tensor] = None, self_weight: Optional[Tensor] = None) -> Tensor:
        r""":math:`\hat{\mathbf{s}}_u = (\mathbf{e}_u + \sum_i w_{ui} \mathbf{e}_i) / (d_u + 1)` for every
        target node (``[N_d, F]``), the neighbourhood mean of ``variant="authors"``."""
        num_dst = x[1].size(0)
        if not self.normalize:
            if self_weight is None or self_weight.shape != (num_dst,):
                raise ValueError(f"NGCFConv: variant='authors' with normalize=False needs self_weight [{num_dst}] "
                                 f"(1 / (degree + 1) of each target node), got "
                                 f"{None if self_weight is None else tuple(self_weight.shape)}")
            side = self.neighbour_sum(x, edge_index, edge_weight, transpose, normalize=False)
            return side + self_weight.to(side.dtype).view(-1, 1) * x[1]
        if self_weight is not None:
            raise ValueError("NGCFConv: self_weight goes with normalize=False (normalize=True computes it)")
        side = self.neighbour_sum(x, edge_index, edge_weight, transpose, normalize=False)
        if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
            w = edge_index.new_ones(edge_index.size(1), dtype=side.dtype) if edge_weight is None else \
                edge_weight.to(side.dtype)
            deg = weighted_degree(edge_index[1], w, num_dst)
        elif isinstance(edge_index, Tensor):  # torch sparse adj_t [N_d, N_s]: row sums
            coo = edge_index.to_sparse_coo().coalesce()
            deg = weighted_degree(coo.indices()[0], coo.values().to(side.dtype), num_dst)
        else:
            raise TypeError("NGCFConv: variant='authors' with normalize=True needs an edge_index or a torch sparse adj_t")
        return (side + x[1].to(side.dtype)) / (deg + 1.0).view(-1, 1)

    def forward(self, x: Union[Tensor, PairTensor], edge_index: Any, edge_weight: Optional[Tensor] = None,
                transpose: Optional[Tensor] = None, self_weight: Optional[Tensor] = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        if self.variant == "authors":
            side = self.self_mean(x, edge_index, edge_weight, transpose, self_weight).to(x[1].dtype)
            return (F.leaky_relu(self.lin1(side), self.negative_slope)
                    + F.leaky_relu(self.lin2(side * x[1]), self.negative_slope))
        if self_weight is not None:
            raise ValueError("NGCFConv: self_weight is for variant='authors'")
        side = self.neighbour_sum(x, edge_index, edge_weight, transpose)
        if side.dtype != x[1].dtype:
            side = side.to(x[1].dtype)
        return F.leaky_relu(self.lin1(x[1] + side) + self.lin2(side * x[1]), self.negative_slope)

    def message(self, x_j: Tensor, edge_weight: Optional[Tensor]) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Any, x: PairTensor) -> Tensor:
        return pyg_spmm(adj_t, x[0], reduce=self.aggr)

    def __repr__(self) -> str:
        extra = "" if self.variant == "paper" else f", variant={self.variant!r}"
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}{extra})"
