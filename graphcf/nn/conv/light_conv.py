r"""LightGCN's light graph convolution on the bipartite user-item graph."""
from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import is_sparse, spmm as pyg_spmm

from graphcf.nn.sparse import bipartite_sym_norm, spmm

PairTensor = Tuple[Tensor, Tensor]


def sparse_sym_norm(adj_t: Tensor) -> Tensor:
    r"""Symmetric normalisation of a torch sparse adjacency ``adj_t [num_dst, num_src]``:
    :math:`a_{ts} / \sqrt{d_t d_s}` with row sums :math:`d_t` and column sums :math:`d_s`."""
    coo = adj_t.to_sparse_coo().coalesce()
    (dst, src), w = coo.indices(), coo.values()
    w = bipartite_sym_norm(torch.stack([src, dst]), w, (adj_t.shape[1], adj_t.shape[0]))
    out = torch.sparse_coo_tensor(torch.stack([dst, src]), w, tuple(adj_t.shape), check_invariants=False)
    return out.to_sparse_csr() if adj_t.layout == torch.sparse_csr else out.coalesce()


class LightConv(MessagePassing):
    r"""Light graph convolution (He et al., "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation", SIGIR 2020, arXiv:2002.02126) on a bipartite graph.

    No weights, no nonlinearity, no self-loop; messages from the source side (e.g. items)
    to the target side (e.g. users) are weighted by the symmetric normalisation

    .. math::
        \mathbf{e}_u' = \sum_{i \in \mathcal{N}(u)} \frac{w_{ui}}{\sqrt{d_u\, d_i}}\, \mathbf{e}_i,
        \qquad d_u = \sum_{i} w_{ui},\ d_i = \sum_{u} w_{ui}

    (:math:`w = 1` and :math:`d = |\mathcal{N}|` for implicit feedback). On a homogeneous
    graph (a single ``x``) it equals PyG's :class:`~torch_geometric.nn.conv.LGConv` without
    self-loops.

    Args:
        normalize: apply the symmetric normalisation (``False``: the edge weights or the
            adjacency's values are used as given, e.g. a pre-normalised adjacency).
            (default: ``True``)
        **kwargs: passed on to :class:`~torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** ``x = (x_src [N_s, F], x_dst [N_d, F])`` or ``x [N, F]``; ``edge_index``
          ``[2, E]`` (source row 0, target row 1) or a sparse adjacency ``adj_t [N_d, N_s]``
          (torch sparse or ``SparseTensor``); ``edge_weight [E]`` (optional); ``transpose``
          ``[N_s, N_d]``, the transpose of a torch sparse ``adj_t`` (optional: with it the
          backward pass multiplies by this precomputed matrix instead of transposing ``adj_t``).
        - **output:** ``[N_d, F]``.
    """

    def __init__(self, normalize: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(**kwargs)
        self.normalize = normalize

    def forward(self, x: Union[Tensor, PairTensor], edge_index: Any, edge_weight: Optional[Tensor] = None,
                transpose: Optional[Tensor] = None) -> Tensor:
        if isinstance(x, Tensor):
            x = (x, x)
        num_src, num_dst = x[0].size(0), x[1].size(0)
        if isinstance(edge_index, Tensor) and not is_sparse(edge_index):
            if self.normalize:
                edge_weight = bipartite_sym_norm(edge_index, edge_weight, (num_src, num_dst), dtype=x[0].dtype)
            return self.propagate(edge_index, x=x, edge_weight=edge_weight, size=(num_src, num_dst))
        if edge_weight is not None:
            raise ValueError("LightConv: edge_weight goes with an edge_index; a sparse adjacency carries its values")
        if tuple(edge_index.sizes() if hasattr(edge_index, "sizes") else edge_index.shape)[:2] != (num_dst, num_src):
            raise ValueError(f"LightConv: adj_t must be [num_dst={num_dst}, num_src={num_src}]")
        if transpose is not None and not self.normalize and isinstance(edge_index, Tensor):
            return spmm(edge_index, transpose, x[0])  # fast path: precomputed transpose for the backward
        if self.normalize:
            if not isinstance(edge_index, Tensor):
                raise TypeError("LightConv: normalize=True needs an edge_index or a torch sparse adj_t")
            edge_index = sparse_sym_norm(edge_index)
        return self.propagate(edge_index, x=x, edge_weight=None, size=(num_src, num_dst))

    def message(self, x_j: Tensor, edge_weight: Optional[Tensor]) -> Tensor:
        return x_j if edge_weight is None else edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Any, x: PairTensor) -> Tensor:
        return pyg_spmm(adj_t, x[0], reduce=self.aggr)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(normalize={self.normalize})"
