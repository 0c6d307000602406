r"""NGCF (Wang et al., SIGIR 2019, arXiv:1905.08108) as a graph encoder."""
from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.nn.conv import NGCFConv
from graphcf.nn.conv.ngcf_conv import VARIANTS
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.functional import take_rows
from graphcf.nn.sparse import AdjacencyCache, BipartiteAdjacency, csr_row_ids, weighted_degree
from graphcf.samplers.neighbor import is_sampled, sampled_self_mean_weights, subgraph_messages
from graphcf.typing import INTERACTS, ITEM, USER, UserItemEmbeddings

__all__ = ["NGCFEncoder"]


def _drop_entries(w: Tensor, p: float) -> Tensor:
    """Zero each entry of ``w`` with probability ``p`` and rescale the rest by :math:`1/(1-p)` (unbiased)."""
    return w * (torch.rand_like(w) >= p).to(w.dtype) / (1 - p)


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
    and rescales the rest, in training mode only. ``variant="authors"`` swaps in the layer of
    the authors' released code (:class:`~graphcf.nn.conv.NGCFConv`: the neighbourhood mean
    with the node itself, :math:`(\mathbf{D}+\mathbf{I})^{-1}(\mathbf{A}+\mathbf{I})\mathbf{E}`, and
    a LeakyReLU on each term); its node dropout drops the two directions of an interaction
    and the self-loops independently, as the entries of that code's single
    :math:`(U+I) \times (U+I)` matrix are. Score with
    :class:`~graphcf.nn.scorers.DotScorer`; the L2 penalty applies to the batch's output
    rows, as in the authors' code. To start from a trained MF's tables (the authors'
    ``--pretrain -1``), call :meth:`~graphcf.nn.encoders.base.Encoder.load_embeddings` with
    the MF's ``state_dict()`` (``graphcf train --embeddings-from RUN``).

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
        variant: ``"paper"`` (eq. (7), the formula above) or ``"authors"``. (default: ``"paper"``)
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, layer_dims: Sequence[int] = (64, 64, 64),
                 mess_dropout: Union[float, Sequence[float]] = 0.1, node_dropout: float = 0.0,
                 negative_slope: float = 0.2, normalize_layers: bool = True, use_edge_weight: bool = False,
                 variant: str = "paper") -> None:
        super().__init__(num_users, num_items)
        if variant not in VARIANTS:
            raise ValueError(f"NGCFEncoder: variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
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
        self.convs = nn.ModuleList(NGCFConv(a, b, negative_slope=negative_slope, normalize=False, variant=variant)
                                   for a, b in zip(ins, dims))
        self._adj_cache = AdjacencyCache()
        self._mean_cache: Optional[Tuple[BipartiteAdjacency, Tuple[BipartiteAdjacency, BipartiteAdjacency, Tensor,
                                                                  Tensor]]] = None
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
        """The normalised Laplacian block :math:`\\hat{\\mathbf{R}}` of ``data``'s training edges (cached;
        for ``variant="authors"`` the unnormalised :math:`\\mathbf{R}` with its weights)."""
        ei = self.check_graph(data)
        w = data[INTERACTS].get("edge_weight") if self.use_edge_weight else None
        return self._adj_cache.get(ei, self.num_users, self.num_items, edge_weight=w,
                                   normalize=self.variant == "paper",
                                   device=self.user_emb.weight.device, dtype=self.user_emb.weight.dtype)

    def self_mean_adjacency(self, data: HeteroData) -> Tuple[BipartiteAdjacency, BipartiteAdjacency, Tensor, Tensor]:
        r"""``variant="authors"``: ``(adj_u, adj_i, self_u, self_i)``, where ``adj_u.user_from_item``
        holds :math:`w_{ui}/(d_u+1)`, ``adj_i.item_from_user`` holds :math:`w_{ui}/(d_i+1)` and
        ``self_u`` / ``self_i`` are :math:`1/(d+1)` (cached with the adjacency)."""
        raw = self.adjacency(data)
        if self._mean_cache is None or self._mean_cache[0] is not raw:
            r = raw.user_from_item
            val = r.values()
            row = csr_row_ids(r)
            col = r.col_indices().long()
            self_u = 1.0 / (weighted_degree(row, val, raw.num_users) + 1.0)
            self_i = 1.0 / (weighted_degree(col, val, raw.num_items) + 1.0)
            self._mean_cache = (raw, (raw.with_values(val * self_u[row]), raw.with_values(val * self_i[col]),
                                      self_u, self_i))
        return self._mean_cache[1]

    #: runs on neighbour-sampled subgraphs (:mod:`graphcf.samplers.neighbor`)
    supports_sampled_subgraphs = True

    @property
    def num_layers(self) -> int:
        return len(self.convs)

    def propagation_matrices(self, data: HeteroData) -> Tuple[BipartiteAdjacency, BipartiteAdjacency,
                                                              Optional[Tensor], Optional[Tensor]]:
        """``(adj_u, adj_i, self_u, self_i)`` one full-graph forward pass uses: users aggregate through
        ``adj_u.user_from_item``, items through ``adj_i.item_from_user``, with self weights ``self_u`` /
        ``self_i`` (``variant="authors"``; ``None`` for the paper's form). In training mode with
        ``node_dropout`` these are a fresh dropped draw: one mask for both directions in the paper's
        form, independent masks for each direction and for the self-loops in the authors' form."""
        p, drop = self.node_dropout, self.training and self.node_dropout > 0
        if self.variant == "paper":
            adj = self.adjacency(data)
            adj = adj.dropout_edges(p) if drop else adj
            return adj, adj, None, None
        adj_u, adj_i, self_u, self_i = self.self_mean_adjacency(data)
        if drop:
            adj_u, adj_i = adj_u.dropout_edges(p), adj_i.dropout_edges(p)
            self_u, self_i = _drop_entries(self_u, p), _drop_entries(self_i, p)
        return adj_u, adj_i, self_u, self_i

    def _layers(self, data: HeteroData) -> Tuple[Tensor, Tensor, Callable, Optional[Callable]]:
        """Layer-0 rows, a ``step(conv, x_u, x_i)`` for the full graph or a sampled subgraph, and
        a ``step_rows(conv, x_u, x_i, users, items)`` that evaluates a layer at the given unique
        rows only (``None`` on a subgraph)."""
        if is_sampled(data):
            p, drop = self.node_dropout, self.training and self.node_dropout > 0

            def dropped(w: Tensor) -> Tensor:
                return _drop_entries(w, p) if drop else w

            to_user, w_user, to_item, w_item = subgraph_messages(data)
            if self.variant == "authors":
                w_user, self_u = sampled_self_mean_weights(to_user, data[USER].deg)
                w_item, self_i = sampled_self_mean_weights(to_item, data[ITEM].deg)
                w_user, w_item, self_u, self_i = (dropped(w) for w in (w_user, w_item, self_u, self_i))
                kw_u, kw_i = {"self_weight": self_u}, {"self_weight": self_i}
            else:
                w_user, w_item, kw_u, kw_i = dropped(w_user), dropped(w_item), {}, {}

            def step(conv, x_u, x_i):
                return conv((x_i, x_u), to_user, w_user, **kw_u), conv((x_u, x_i), to_item, w_item, **kw_i)

            return self.user_emb.weight[data[USER].n_id], self.item_emb.weight[data[ITEM].n_id], step, None
        adj_u, adj_i, self_u, self_i = self.propagation_matrices(data)

        def step(conv, x_u, x_i):
            return (conv((x_i, x_u), adj_u.user_from_item, transpose=adj_u.item_from_user, self_weight=self_u),
                    conv((x_u, x_i), adj_i.item_from_user, transpose=adj_i.user_from_item, self_weight=self_i))

        def step_rows(conv, x_u, x_i, users, items):
            r_u, r_u_t = adj_u.user_rows(users)
            r_i, r_i_t = adj_i.item_rows(items)
            return (conv((x_i, x_u[users]), r_u, transpose=r_u_t,
                         self_weight=None if self_u is None else self_u[users]),
                    conv((x_u, x_i[items]), r_i, transpose=r_i_t,
                         self_weight=None if self_i is None else self_i[items]))

        return self.user_emb.weight, self.item_emb.weight, step, step_rows

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
        x_u, x_i, step, step_rows = self._layers(data)
        outs_u, outs_i = [x_u[uu]], [x_i[ui]]
        last = len(self.convs) - 1
        for k, (conv, p) in enumerate(zip(self.convs, self.mess_dropout)):
            if k < last:
                x_u, x_i = step(conv, x_u, x_i)
                x_u, x_i = F.dropout(x_u, p, self.training), F.dropout(x_i, p, self.training)
                outs_u.append(F.normalize(x_u[uu], dim=1) if self.normalize_layers else x_u[uu])
                outs_i.append(F.normalize(x_i[ui], dim=1) if self.normalize_layers else x_i[ui])
                continue
            y_u, y_i = step_rows(conv, x_u, x_i, uu, ui)
            outs_u.append(self._output(y_u, p))
            outs_i.append(self._output(y_i, p))
        return UserItemEmbeddings(take_rows(torch.cat(outs_u, dim=1), inv_u.view(users.shape)),
                                  take_rows(torch.cat(outs_i, dim=1), inv_i.view(items.shape)))

    def extra_repr(self) -> str:
        return (f"{self.num_users}, {self.num_items}, dim={self.dim}, layer_dims={self.layer_dims}, "
                f"mess_dropout={self.mess_dropout}, node_dropout={self.node_dropout}"
                + ("" if self.variant == "paper" else f", variant={self.variant!r}"))
