"""The encoder interface shared by every graphcf model."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.typing import INTERACTS, ITEM, USER, UserItemEmbeddings


class Encoder(nn.Module):
    """Base class: an encoder maps the *training graph* to user and item representations.

    Subclasses implement :meth:`forward` ``(data) -> UserItemEmbeddings``. Zero-hop
    encoders (MF, popularity, ...) may ignore the edges but still take the graph, so
    every model plugs into the same trainer, samplers and evaluator.

    Attributes:
        num_users, num_items: universe sizes the encoder was built for.

    What an encoder can do is declared here, once, and read by the objectives and the trainer
    (subclasses override the class attributes):

    Class attributes:
        num_layers: message-passing hops (``0`` for zero-hop encoders); neighbour sampling
            needs at least this many ``num_neighbors`` entries.
        supports_sampled_subgraphs: runs on ``LinkNeighborLoader`` subgraphs
            (``train.sampling: neighbor``).
        sampling_note: why it does not, shown in the error when ``sampling: neighbor`` is asked for.
        reg_rows: which rows the objectives' L2 penalty applies to: ``"output"`` (the batch's output
            rows, the default), ``"ego"`` (the layer-0 ID embeddings of the batch, from
            :meth:`reg_embeddings`, as LightGCN) or ``"custom"`` (whatever :meth:`reg_embeddings`
            returns; what an override that does not declare ``reg_rows`` gets).
        aux_losses: the names of the auxiliary losses its ``forward`` returns in
            ``UserItemEmbeddings.aux`` (e.g. ``("kl",)``); the objective weights each by name.
    """

    num_users: int
    num_items: int
    num_layers: int = 0
    supports_sampled_subgraphs: bool = False
    sampling_note: str = ""
    reg_rows: str = "output"
    aux_losses: tuple = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # an encoder that overrides reg_embeddings without saying which rows it returns: "custom" (the
        # objectives then always ask reg_embeddings, never reuse the output rows)
        if "reg_embeddings" in cls.__dict__ and "reg_rows" not in cls.__dict__ and cls.reg_rows == "output":
            cls.reg_rows = "custom"

    def __init__(self, num_users: int, num_items: int) -> None:
        super().__init__()
        if num_users <= 0 or num_items <= 0:
            raise ValueError(f"{type(self).__name__}: num_users and num_items must be positive, "
                             f"got {num_users}, {num_items}")
        self.num_users = int(num_users)
        self.num_items = int(num_items)

    def check_graph(self, data: HeteroData) -> Tensor:
        """Validate that ``data`` matches this encoder's universe; return its training ``edge_index``."""
        nu, ni = int(data[USER].num_nodes), int(data[ITEM].num_nodes)
        if (nu, ni) != (self.num_users, self.num_items):
            raise ValueError(
                f"{type(self).__name__} was built for {self.num_users} users x {self.num_items} items, "
                f"but the graph has {nu} x {ni}"
            )
        return data[INTERACTS].edge_index

    def load_embeddings(self, state: Mapping[str, Tensor],
                        names: Sequence[str] = ("user_emb.weight", "item_emb.weight"),
                        source: str = "state") -> None:
        """Initialise embedding tables from another model's ``state_dict`` (pretraining).

        Copies each parameter in ``names`` (default: the layer-0 user and item tables, which
        MF, LightGCN and NGCF share by name) from ``state`` into this encoder, leaving every
        other parameter as initialised. This is the NGCF authors' ``--pretrain -1`` option:
        NGCF started from the embeddings of a trained MF model.

        Raises:
            KeyError: a name is missing from ``state`` or from this encoder.
            ValueError: a shape differs (e.g. another universe or embedding size).
        """
        own = dict(self.named_parameters())
        for name in names:
            if name not in own:
                raise KeyError(f"{type(self).__name__}.load_embeddings: this encoder has no parameter {name!r}")
            if name not in state:
                raise KeyError(f"{type(self).__name__}.load_embeddings: {source} has no entry {name!r} "
                               f"(it has {sorted(state)[:8]})")
            src = state[name]
            if tuple(src.shape) != tuple(own[name].shape):
                raise ValueError(f"{type(self).__name__}.load_embeddings: {source}[{name!r}] has shape "
                                 f"{tuple(src.shape)}, this encoder's is {tuple(own[name].shape)}")
            with torch.no_grad():
                own[name].copy_(src)

    def fit_statistics(self, data: HeteroData) -> None:
        """Hook for encoders with closed-form state (e.g. popularity); default: nothing."""

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:  # pragma: no cover
        """Representations of all users (or of ``users`` only, ``[B, d]``) and all items."""
        raise NotImplementedError

    def embed_rows(self, data: HeteroData, users: Tensor, items: Tensor) -> UserItemEmbeddings:
        """Final representations of the rows ``users`` and ``items`` only.

        Returns ``UserItemEmbeddings(user [len(users), d], item [len(items), d], aux)``,
        rows in the given order (repeats allowed). What a training step needs: the default
        runs the full :meth:`forward` and gathers; graph encoders override it to skip work
        that only other rows need (LightGCN computes its last layer for these rows only).
        """
        emb = self(data)
        return UserItemEmbeddings(emb.user[users], emb.item[items], emb.aux)

    def reg_embeddings(self, emb: UserItemEmbeddings, users: Tensor, *items: Tensor) -> Sequence[Tensor]:
        """The batch rows that the L2 penalty applies to.

        Default: the output rows ``emb.user[users]``, ``emb.item[i]`` for each item
        tensor. Graph encoders override this to regularise their layer-0 (ego)
        embeddings instead, as LightGCN does, and declare ``reg_rows = "ego"``; an override gets ``emb`` from
        :meth:`embed_rows` (batch rows, not whole tables) during training, so it should
        index its own parameters with the global ids ``users`` / ``items``.
        """
        return [emb.user[users], *(emb.item[i] for i in items)]

    @staticmethod
    def select_users(user: Tensor, users: Optional[Tensor]) -> Tensor:
        """``user`` rows for ``users`` (all rows when ``users`` is ``None``)."""
        return user if users is None else user[users]

    def extra_repr(self) -> str:
        return f"num_users={self.num_users}, num_items={self.num_items}"
