r"""NGCF (Wang et al., SIGIR 2019, arXiv:1905.08108) as a graph encoder."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.nn.conv import NGCFConv
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.functional import take_rows
from graphcf.nn.sparse import AdjacencyCache, BipartiteAdjacency
from graphcf.samplers.neighbor import is_sampled, subgraph_messages
from graphcf.typing import INTERACTS, ITEM, USER, UserItemEmbeddings

__all__ = ["NGCFEncoder"]


class NGCFEncoder(Encoder):
    r"""NGCF: ID embeddings refined by :math:`L` :class:`~graphcf.nn.conv.NGCFConv` layers,
    layer outputs concatenated (eq. (9) of the paper):

    .. math::
        \mathbf{E}^{(l)} = \operatorname{LeakyReLU}\big((\mathcal{L} + \mathbf{I})\,\mathbf{E}^{(l-1)}\mathbf{W}_1^{(l)}
        + (\mathcal{L}\mathbf{E}^{(l-1)}) \odot \mathbf{E}^{(l-1)}\, \mathbf{W}_2^{(l)}\big),
        \qquad
        \mathbf{e}^* = \mathbf{e}^{(0)} \,\|\, \bar{\mathbf{e}}^{(1)} \,\|\, \cdots \,\|\, \bar{\mathbf{e}}^{(L)},

    with :math:`\mathcal{L} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` on the bipartite graph.
    As in the authors' code, each layer's output goes through message dropout (training
    only) before it feeds the next layer, and enters the concatenation L2-normalised
    (:math:`\bar{\mathbf{e}}^{(l)} = \mathbf{e}^{(l)} / \lVert \mathbf{e}^{(l)} \rVert`; set
    ``normalize_layers=False`` for the paper's plain concatenation). Node dropout drops
    interactions of the normalised adjacency (both directions) with rate ``node_dropout``
    and rescales the rest, in training mode only. Score with
    :class:`~graphcf.nn.scorers.DotScorer`; the L2 penalty applies to the batch's output
    rows, as in the authors' code.

    Args:
        num_users, num_items: universe sizes.
        dim: size of :math:`\mathbf{e}^{(0)}`. (default: ``64``)
        layer_dims: output size of each layer. (default: ``(64, 64, 64)``, the paper's)
        mess_dropout: message dropout rate, one for all layers or one per layer. (default: ``0.1``)
        node_dropout: interaction dropout rate. (default: ``0.0``: the authors' run scripts
            leave it off)
        negative_slope: of the LeakyReLU. (default: ``0.2``)
        normalize_layers: L2-normalise the layer outputs in the concatenation. (default: ``True``)
        use_edge_weight: weight edges by ``edge_weight`` in :math:`\mathcal{L}`. (default: ``False``)
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, layer_dims: Sequence[int] = (64, 64, 64),
                 mess_dropout: Union[float, Sequence[float]] = 0.1, node_dropout: float = 0.0,
                 negative_slope: float = 0.2, normalize_layers: bool = True, use_edge_weight: bool = False) -> None:
        super().__init__(num_users, num_items)
        dims = [int(d) for d in layer_dims]
        if any(d < 1 for d in dims) or dim < 1:
            raise ValueError(f"NGCFEncoder: dim and layer_dims must be positive, got {dim}, {layer_dims}")
        drops = [float(mess_dropout)] * len(dims) if isinstance(mess_dropout, (int, float)) else \
            [float(p) for p in mess_dropout]
        if len(drops) != len(dims) or any(not 0.0 <= p < 1.0 for p in drops):
            raise ValueError(f"NGCFEncoder: mess_dropout must be one rate in [0, 1) or one per layer "
                             f"({len(dims)}), got {mess_dropout}")
        if not 0.0 <= node_dropout < 1.0:
            raise ValueError(f"NGCFEncoder: node_dropout must be in [0, 1), got {node_dropout}")
        self.dim = int(dim)
        self.layer_dims = tuple(dims)
        self.mess_dropout = tuple(drops)
        self.node_dropout = float(node_dropout)
        self.normalize_layers = bool(normalize_layers)
        self.use_edge_weight = bool(use_edge_weight)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        ins = [self.dim, *dims[:-1]]
        self.convs = nn.ModuleList(NGCFConv(a, b, negative_slope=negative_slope, normalize=False)
                                   for a, b in zip(ins, dims))
        self._adj_cache = AdjacencyCache()
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Size of the final (concatenated) embeddings: ``dim + sum(layer_dims)``."""
        return self.dim + sum(self.layer_dims)

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_emb.weight)
        nn.init.xavier_uniform_(self.item_emb.weight)
        for conv in self.convs:
            conv.reset_parameters()

    def adjacency(self, data: HeteroData) -> BipartiteAdjacency:
        """The normalised Laplacian block :math:`\\hat{\\mathbf{R}}` of ``data``'s training edges (cached)."""
        ei = self.check_graph(data)
        w = data[INTERACTS].get("edge_weight") if self.use_edge_weight else None
        return self._adj_cache.get(ei, self.num_users, self.num_items, edge_weight=w,
                                   device=self.user_emb.weight.device, dtype=self.user_emb.weight.dtype)

    #: runs on neighbour-sampled subgraphs (:mod:`graphcf.samplers.neighbor`)
    supports_sampled_subgraphs = True

    @property
    def num_layers(self) -> int:
        return len(self.convs)

    def _layers(self, data: HeteroData):
        """Layer-0 rows and a ``step(conv, x_u, x_i)`` for the full graph or a sampled subgraph
        (and the full graph's adjacency, ``None`` on a subgraph)."""
        if is_sampled(data):
            to_user, w_user, to_item, w_item = subgraph_messages(data)
            if self.training and self.node_dropout > 0:  # drop sampled edges, rescale the rest
                p = self.node_dropout
                w_user = w_user * (torch.rand_like(w_user) >= p).to(w_user.dtype) / (1 - p)
                w_item = w_item * (torch.rand_like(w_item) >= p).to(w_item.dtype) / (1 - p)

            def step(conv, x_u, x_i):
                return conv((x_i, x_u), to_user, w_user), conv((x_u, x_i), to_item, w_item)

            return self.user_emb.weight[data[USER].n_id], self.item_emb.weight[data[ITEM].n_id], step, None
        adj = self.adjacency(data)
        if self.training and self.node_dropout > 0:
            adj = adj.dropout_edges(self.node_dropout)

        def step(conv, x_u, x_i):
            return (conv((x_i, x_u), adj.user_from_item, transpose=adj.item_from_user),
                    conv((x_u, x_i), adj.item_from_user, transpose=adj.user_from_item))

        return self.user_emb.weight, self.item_emb.weight, step, adj

    def _output(self, x: Tensor, p: float) -> Tensor:
        x = F.dropout(x, p, self.training)
        return F.normalize(x, dim=1) if self.normalize_layers else x

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        """Concatenated embeddings ``[*, dim + sum(layer_dims)]`` of all users (or ``users``) and all items.

        On a sampled subgraph (nodes carry ``n_id``) the rows are the subgraph's nodes (local
        indices) and the layers use the unbiased weights of :mod:`graphcf.samplers.neighbor`.
        """
        x_u, x_i, step, _ = self._layers(data)
        outs_u, outs_i = [x_u], [x_i]
        for conv, p in zip(self.convs, self.mess_dropout):
            x_u, x_i = step(conv, x_u, x_i)
            # dropout on the layer's output, which feeds the next layer as well (authors' code)
            x_u, x_i = F.dropout(x_u, p, self.training), F.dropout(x_i, p, self.training)
            outs_u.append(F.normalize(x_u, dim=1) if self.normalize_layers else x_u)
            outs_i.append(F.normalize(x_i, dim=1) if self.normalize_layers else x_i)
        return UserItemEmbeddings(self.select_users(torch.cat(outs_u, dim=1), users), torch.cat(outs_i, dim=1))

    def embed_rows(self, data: HeteroData, users: Tensor, items: Tensor) -> UserItemEmbeddings:
        """Concatenated embeddings of the batch rows only: the last layer (its neighbour sum,
        weights, dropout and normalisation) runs for the unique ``users`` / ``items`` alone, on
        the rows' blocks of the adjacency (:meth:`BipartiteAdjacency.row_blocks`). Equal to
        ``forward`` then gathering in eval mode; in training mode the last layer's dropout
        draws masks for these rows only (same distribution, other random numbers)."""
        if is_sampled(data) or not self.convs:
            return super().embed_rows(data, users, items)
        uu, inv_u = torch.unique(users.reshape(-1), return_inverse=True)
        ui, inv_i = torch.unique(items.reshape(-1), return_inverse=True)
        x_u, x_i, step, adj = self._layers(data)
        outs_u, outs_i = [x_u[uu]], [x_i[ui]]
        last = len(self.convs) - 1
        for k, (conv, p) in enumerate(zip(self.convs, self.mess_dropout)):
            if k < last:
                x_u, x_i = step(conv, x_u, x_i)
                x_u, x_i = F.dropout(x_u, p, self.training), F.dropout(x_i, p, self.training)
                outs_u.append(F.normalize(x_u[uu], dim=1) if self.normalize_layers else x_u[uu])
                outs_i.append(F.normalize(x_i[ui], dim=1) if self.normalize_layers else x_i[ui])
                continue
            r_u, r_u_t, r_i, r_i_t = adj.row_blocks(uu, ui)
            y_u = conv((x_i, x_u[uu]), r_u, transpose=r_u_t)
            y_i = conv((x_u, x_i[ui]), r_i, transpose=r_i_t)
            outs_u.append(self._output(y_u, p))
            outs_i.append(self._output(y_i, p))
        return UserItemEmbeddings(take_rows(torch.cat(outs_u, dim=1), inv_u.view(users.shape)),
                                  take_rows(torch.cat(outs_i, dim=1), inv_i.view(items.shape)))

    def extra_repr(self) -> str:
        return (f"{self.num_users}, {self.num_items}, dim={self.dim}, layer_dims={self.layer_dims}, "
                f"mess_dropout={self.mess_dropout}, node_dropout={self.node_dropout}")
