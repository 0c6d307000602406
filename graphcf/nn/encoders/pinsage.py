r"""PinSAGE (Ying et al., "Graph Convolutional Neural Networks for Web-Scale Recommender Systems",
KDD 2018, arXiv:1806.01973) as a graph encoder on the bipartite user-item graph."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.nn.conv.pinsage_conv import PinSAGEConv
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.sparse import AdjacencyCache, _crow, _csr_tensor
from graphcf.samplers.random_walk import ImportanceNeighborhoods, importance_neighborhoods
from graphcf.typing import ITEM, USER, UserItemEmbeddings

__all__ = ["PinSAGEEncoder", "computation_graph"]


def computation_graph(nbrs: ImportanceNeighborhoods, rows: Tensor, depth: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The :math:`K`-hop computation graph of ``rows`` over importance neighbourhoods (PinSAGE's mini-batches).

    Starting from the (unique) ``rows``, each hop adds the importance neighbours of the
    current node set, ``depth`` times. Returns ``(nodes [M], edge_index [2, E'], edge_weight [E'],
    position [len(rows)])``: the global ids of the subgraph's nodes, its edges (local ids; row
    0 the neighbour, row 1 the target; every neighbour edge of the subgraph's nodes whose
    neighbour is in the subgraph) and the local position of each of ``rows``. After ``depth``
    layers of :class:`~graphcf.nn.conv.PinSAGEConv` on this subgraph, the outputs at
    ``position`` equal those of the same layers on the whole importance graph: every node
    within ``depth - 1`` hops of ``rows`` has all of its neighbours in the subgraph.
    """
    uniq, position = torch.unique(rows, return_inverse=True)
    nodes = uniq
    for _ in range(depth):
        nb = nbrs.index[nodes].flatten()
        nodes = torch.unique(torch.cat([nodes, nb[nb >= 0]]))
    local = torch.full((nbrs.num_nodes,), -1, dtype=torch.long, device=nodes.device)
    local[nodes] = torch.arange(nodes.numel(), device=nodes.device)
    src = nbrs.index[nodes]
    src_local = torch.where(src >= 0, local[src.clamp_min(0)], src)
    valid = src_local >= 0
    dst = torch.arange(nodes.numel(), device=nodes.device).unsqueeze(1).expand_as(src)
    edge_index = torch.stack([src_local[valid], dst[valid]])
    return nodes, edge_index, nbrs.weight[nodes][valid], local[uniq][position]


def weighted_csr(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> Tuple[Tensor, Tensor]:
    """``(adj_t, transpose)``: the ``[N, N]`` torch sparse CSR matrices ``A[dst, src] = w`` and ``A^T``
    of a neighbourhood graph, for :class:`~graphcf.nn.conv.PinSAGEConv`'s sparse-product path."""
    src, dst = edge_index[0], edge_index[1]
    order = torch.argsort(dst * num_nodes + src)
    a = _csr_tensor(_crow(dst[order], num_nodes), src[order], edge_weight[order], (num_nodes, num_nodes))
    order_t = torch.argsort(src * num_nodes + dst)
    a_t = _csr_tensor(_crow(src[order_t], num_nodes), dst[order_t], edge_weight[order_t], (num_nodes, num_nodes))
    return a, a_t


class PinSAGEEncoder(Encoder):
    r"""PinSAGE: :math:`K` :class:`~graphcf.nn.conv.PinSAGEConv` layers over random-walk importance neighbourhoods.

    Users and items each get a learned ID embedding as input feature
    :math:`\mathbf{h}^{(0)}`, then :math:`K` convolutions with importance pooling over
    their own side's importance neighbourhood (items: the items most visited by walks
    item -> user -> item; users likewise through items,
    :func:`~graphcf.samplers.random_walk.importance_neighborhoods`). Each side has its own
    layer weights. The last layer's output goes through the paper's two dense layers
    (Algorithm 2: :math:`\mathbf{z} = \mathbf{G}_2 \operatorname{ReLU}(\mathbf{G}_1 \mathbf{h}^{(K)} + \mathbf{g})`)
    and is L2-normalised (``normalize_output``), so :class:`~graphcf.nn.scorers.DotScorer`
    scores cosine similarities (train with the max-margin loss, ``loss="margin"``, as in the paper).

    **Training on mini-batches.** :meth:`embed_rows` (what a training step calls) runs the
    layers only on the :func:`computation_graph` of the batch's users and items: the
    :math:`K`-hop importance neighbourhoods of those rows, as PinSAGE's producer builds
    them; :meth:`forward` (evaluation) runs them over all nodes. The two agree exactly.
    The neighbourhoods are computed from ``data[INTERACTS].edge_index`` (training edges only)
    with a generator seeded by ``seed`` and cached until that tensor changes.

    Args:
        num_users, num_items: universe sizes.
        dim: size of the ID embeddings and of every layer's output. (default: ``64``)
        num_layers: :math:`K`. (default: ``2``, the paper's)
        hidden_dim: size of the pooled neighbour messages. (default: ``dim``)
        num_neighbors: :math:`T`, neighbours kept per node. (default: ``10``)
        num_walks: random walks per node. (default: ``50``)
        walk_length: maximum traversals (two hops each) per walk. (default: ``2``)
        restart_prob: stopping probability after each traversal. (default: ``0.5``)
        init_std: std of the normal initialisation of the ID embeddings. (default: ``0.1``)
        seed: seed of the random walks. (default: ``0``)
        normalize_output: L2-normalise the final embeddings. (default: ``True``)
    """

    #: runs neighbour-sampled mini-batches itself (embed_rows), not on LinkNeighborLoader subgraphs
    supports_sampled_subgraphs = False
    sampling_note = ("PinSAGE always trains on mini-batches: the K-hop computation graphs of the batch rows "
                     "over its random-walk neighbourhoods")
    #: the L2 penalty applies to the batch's ID embeddings (:meth:`reg_embeddings`)
    reg_rows = "ego"

    def __init__(self, num_users: int, num_items: int, dim: int = 64, num_layers: int = 2,
                 hidden_dim: Optional[int] = None, num_neighbors: int = 10, num_walks: int = 50,
                 walk_length: int = 2, restart_prob: float = 0.5, init_std: float = 0.1, seed: int = 0,
                 normalize_output: bool = True) -> None:
        super().__init__(num_users, num_items)
        if num_layers < 1:
            raise ValueError(f"PinSAGEEncoder: num_layers must be >= 1, got {num_layers}")
        if dim < 1:
            raise ValueError(f"PinSAGEEncoder: dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.hidden_dim = int(hidden_dim or dim)
        self.walk_args = {"num_neighbors": int(num_neighbors), "num_walks": int(num_walks),
                          "walk_length": int(walk_length), "restart_prob": float(restart_prob)}
        self.init_std = float(init_std)
        self.seed = int(seed)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.user_convs = nn.ModuleList(PinSAGEConv(dim, dim, self.hidden_dim) for _ in range(num_layers))
        self.item_convs = nn.ModuleList(PinSAGEConv(dim, dim, self.hidden_dim) for _ in range(num_layers))
        self.normalize_output = bool(normalize_output)
        self.user_head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.item_head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self._full_csr: Optional[Tuple[Any, ...]] = None
        self._nbr_key: Optional[Tuple[Any, ...]] = None
        self._nbr_alive: Optional[Tensor] = None
        self._nbrs: Optional[Tuple[ImportanceNeighborhoods, ImportanceNeighborhoods]] = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)
        for conv in [*self.user_convs, *self.item_convs]:
            conv.reset_parameters()
        for head in (self.user_head, self.item_head):
            for m in head:
                if isinstance(m, nn.Linear):
                    m.reset_parameters()

    def neighborhoods(self, data: HeteroData) -> Tuple[ImportanceNeighborhoods, ImportanceNeighborhoods]:
        """``(user, item)`` importance neighbourhoods of ``data``'s training graph (cached)."""
        ei = self.check_graph(data)
        device = self.user_emb.weight.device
        key = (AdjacencyCache._tensor_key(ei), str(device), self.seed, tuple(self.walk_args.items()))
        if self._nbrs is None or key != self._nbr_key:
            gen = torch.Generator().manual_seed(self.seed)
            sides = []
            for node_type in (USER, ITEM):
                nb = importance_neighborhoods(ei, self.num_users, self.num_items, node_type, generator=gen,
                                              **self.walk_args)
                sides.append(ImportanceNeighborhoods(nb.index.to(device), nb.weight.to(device)))
            self._nbrs, self._nbr_key, self._nbr_alive = (sides[0], sides[1]), key, ei
            self._full_csr = tuple(weighted_csr(*nb.edge_index(), nb.num_nodes) for nb in sides)
        return self._nbrs

    def _run(self, convs: nn.ModuleList, head: nn.Module, x: Tensor, adj: Tensor, adj_t: Tensor) -> Tensor:
        for conv in convs:
            x = conv(x, adj, transpose=adj_t)
        z = head(x)
        return torch.nn.functional.normalize(z, dim=-1) if self.normalize_output else z

    def _side(self, side: int, nbrs: ImportanceNeighborhoods, rows: Optional[Tensor]) -> Tensor:
        convs, head, emb = ((self.user_convs, self.user_head, self.user_emb) if side == 0 else
                            (self.item_convs, self.item_head, self.item_emb))
        if rows is None:
            adj, adj_t = self._full_csr[side]  # type: ignore[index]
            return self._run(convs, head, emb.weight, adj, adj_t)
        nodes, ei, w, pos = computation_graph(nbrs, rows.to(nbrs.index.device).long(), self.num_layers)
        adj, adj_t = weighted_csr(ei, w, nodes.numel())
        return self._run(convs, head, emb.weight[nodes], adj, adj_t)[pos]

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        """Final (L2-normalised) embeddings of all users (or ``users``) and all items."""
        nb_u, nb_i = self.neighborhoods(data)
        return UserItemEmbeddings(self._side(0, nb_u, users), self._side(1, nb_i, None))

    def embed_rows(self, data: HeteroData, users: Tensor, items: Tensor) -> UserItemEmbeddings:
        """Final embeddings of the batch rows, computed on their :func:`computation_graph` only."""
        nb_u, nb_i = self.neighborhoods(data)
        return UserItemEmbeddings(self._side(0, nb_u, users), self._side(1, nb_i, items))

    def reg_embeddings(self, emb: UserItemEmbeddings, users: Tensor, *items: Tensor):
        """The batch's ID-embedding rows (the outputs are unit vectors, so an L2 on them would be constant)."""
        return [self.user_emb.weight[users], *(self.item_emb.weight[i] for i in items)]

    def extra_repr(self) -> str:
        return (f"{self.num_users}, {self.num_items}, dim={self.dim}, num_layers={self.num_layers}, "
                f"num_neighbors={self.walk_args['num_neighbors']}")
