r"""LightGCN (He et al., SIGIR 2020, arXiv:2002.02126) as a graph encoder."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.nn.conv import LightConv
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.sparse import AdjacencyCache, BipartiteAdjacency, layer_sum_propagate
from graphcf.samplers.neighbor import is_sampled, subgraph_messages
from graphcf.typing import INTERACTS, ITEM, USER, UserItemEmbeddings

__all__ = ["LightGCNEncoder"]


class LightGCNEncoder(Encoder):
    r"""LightGCN: ID embeddings smoothed by :math:`K` light convolutions, layer outputs averaged.

    .. math::
        \mathbf{E}_U^{(k+1)} = \hat{\mathbf{R}}\, \mathbf{E}_I^{(k)}, \qquad
        \mathbf{E}_I^{(k+1)} = \hat{\mathbf{R}}^\top \mathbf{E}_U^{(k)}, \qquad
        \hat{\mathbf{R}}_{ui} = \frac{1}{\sqrt{|\mathcal{N}_u|\,|\mathcal{N}_i|}},

        \mathbf{e}_u = \sum_{k=0}^{K} \alpha_k\, \mathbf{e}_u^{(k)}, \qquad
        \mathbf{e}_i = \sum_{k=0}^{K} \alpha_k\, \mathbf{e}_i^{(k)}, \qquad
        \alpha_k = \tfrac{1}{K+1}\ \text{(default)}

    (:class:`~graphcf.nn.conv.LightConv`: no weights, no nonlinearity, no self-loop). The only
    parameters are the layer-0 embeddings :math:`\mathbf{E}^{(0)}`; the trainer's L2 penalty
    applies to their batch rows (:meth:`reg_embeddings`), as in the paper. Score with
    :class:`~graphcf.nn.scorers.DotScorer`.

    The graph is a forward input: the normalised adjacency is built from
    ``data[INTERACTS].edge_index`` (and ``edge_weight`` when ``use_edge_weight``) and cached
    until that tensor changes.

    Args:
        num_users, num_items: universe sizes.
        dim: embedding size. (default: ``64``)
        num_layers: :math:`K`. (default: ``3``)
        alpha: layer weights :math:`\alpha_0..\alpha_K` (a registered buffer, saved in
            ``state_dict``); default uniform :math:`1/(K+1)`.
        init_std: std of the normal initialisation of :math:`\mathbf{E}^{(0)}` (official code: 0.1).
        use_edge_weight: weight edges by ``edge_weight`` (e.g. ratings) in :math:`\hat{\mathbf{R}}`.
            (default: ``False``: implicit feedback)
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, num_layers: int = 3,
                 alpha: Optional[Sequence[float]] = None, init_std: float = 0.1,
                 use_edge_weight: bool = False) -> None:
        super().__init__(num_users, num_items)
        if num_layers < 0:
            raise ValueError(f"LightGCNEncoder: num_layers must be >= 0, got {num_layers}")
        if alpha is None:
            alpha_t = torch.full((num_layers + 1,), 1.0 / (num_layers + 1))
        else:
            alpha_t = torch.as_tensor(list(alpha), dtype=torch.float32)
            if alpha_t.shape != (num_layers + 1,):
                raise ValueError(f"LightGCNEncoder: alpha needs num_layers + 1 = {num_layers + 1} weights, "
                                 f"got {len(alpha_t)}")
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.init_std = float(init_std)
        self.use_edge_weight = bool(use_edge_weight)
        self.register_buffer("alpha", alpha_t)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        # the normalisation is done once in the cached adjacency: the layers take it as given
        self.convs = nn.ModuleList(LightConv(normalize=False) for _ in range(num_layers))
        self._adj_cache = AdjacencyCache()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)

    def adjacency(self, data: HeteroData) -> BipartiteAdjacency:
        """The normalised :math:`\\hat{\\mathbf{R}}` of ``data``'s training edges (cached)."""
        ei = self.check_graph(data)
        store = data[INTERACTS]
        w = store.get("edge_weight") if self.use_edge_weight else None
        return self._adj_cache.get(ei, self.num_users, self.num_items, edge_weight=w,
                                   device=self.user_emb.weight.device, dtype=self.user_emb.weight.dtype)

    def propagate(self, adj: BipartiteAdjacency, x_user: Tensor, x_item: Tensor, fused: bool = True):
        """The :math:`\\alpha`-weighted sum of the layer outputs, ``(users [U, d], items [I, d])``.

        ``fused`` (default) runs all layers as one autograd node
        (:func:`~graphcf.nn.sparse.layer_sum_propagate`: Horner-scheme backward, no saved layer
        outputs); ``fused=False`` runs the :class:`~graphcf.nn.conv.LightConv` layers one by one
        (same result; kept as the reference path).
        """
        if fused:
            return layer_sum_propagate(adj, x_user, x_item, self.alpha)
        out_u, out_i = self.alpha[0] * x_user, self.alpha[0] * x_item
        for k, conv in enumerate(self.convs, start=1):
            x_user, x_item = (conv((x_item, x_user), adj.user_from_item, transpose=adj.item_from_user),
                              conv((x_user, x_item), adj.item_from_user, transpose=adj.user_from_item))
            out_u = out_u + self.alpha[k] * x_user
            out_i = out_i + self.alpha[k] * x_item
        return out_u, out_i

    #: runs on neighbour-sampled subgraphs (:mod:`graphcf.samplers.neighbor`)
    supports_sampled_subgraphs = True
    #: the L2 penalty applies to the batch's layer-0 embeddings (:meth:`reg_embeddings`)
    reg_rows = "ego"

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        """Final embeddings of all users (or ``users``) and all items after :math:`K` layers.

        On a sampled subgraph (nodes carry global ids ``n_id``) the layers run on the sampled
        edges with the unbiased weights of :mod:`graphcf.samplers.neighbor`, and the rows are
        the subgraph's nodes (local indices; ``users`` are local too).
        """
        if is_sampled(data):
            to_user, w_user, to_item, w_item = subgraph_messages(data)
            x_u, x_i = self.user_emb.weight[data[USER].n_id], self.item_emb.weight[data[ITEM].n_id]
            out_u, out_i = self.alpha[0] * x_u, self.alpha[0] * x_i
            for k, conv in enumerate(self.convs, start=1):
                x_u, x_i = conv((x_i, x_u), to_user, w_user), conv((x_u, x_i), to_item, w_item)
                out_u = out_u + self.alpha[k] * x_u
                out_i = out_i + self.alpha[k] * x_i
            return UserItemEmbeddings(self.select_users(out_u, users), out_i)
        adj = self.adjacency(data)
        out_u, out_i = self.propagate(adj, self.user_emb.weight, self.item_emb.weight)
        return UserItemEmbeddings(self.select_users(out_u, users), out_i)

    def embed_rows(self, data: HeteroData, users: Tensor, items: Tensor) -> UserItemEmbeddings:
        """Final embeddings of the batch rows only: layers :math:`1..K-1` on the whole graph,
        layer :math:`K` on the rows' sub-matrix (:func:`~graphcf.nn.sparse.layer_sum_propagate`
        with ``users`` / ``items``); equal to ``forward`` then gathering, one full-graph
        product cheaper each way."""
        if is_sampled(data):
            return super().embed_rows(data, users, items)
        adj = self.adjacency(data)
        u, i = layer_sum_propagate(adj, self.user_emb.weight, self.item_emb.weight, self.alpha,
                                   users=users, items=items)
        return UserItemEmbeddings(u, i)

    def reg_embeddings(self, emb: UserItemEmbeddings, users: Tensor, *items: Tensor) -> Sequence[Tensor]:
        """Layer-0 (ego) embeddings of the batch: LightGCN's L2 penalty."""
        return [self.user_emb.weight[users], *(self.item_emb.weight[i] for i in items)]

    def extra_repr(self) -> str:
        return f"{self.num_users}, {self.num_items}, dim={self.dim}, num_layers={self.num_layers}"
