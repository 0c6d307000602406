"""Shared names and small result types used across graphcf."""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

from torch import Tensor

#: Node type of users in every graphcf :class:`~torch_geometric.data.HeteroData`.
USER = "user"
#: Node type of items.
ITEM = "item"
#: Edge type user -> item; its ``edge_index`` holds the *training* edges only.
INTERACTS: Tuple[str, str, str] = (USER, "interacts", ITEM)
#: Reverse edge type item -> user (same training edges, flipped).
REV_INTERACTS: Tuple[str, str, str] = (ITEM, "rev_interacts", USER)

#: Names of the held-out splits; ``data[INTERACTS][f"{name}_edge_label_index"]``.
SPLITS = ("val", "test")


class UserItemEmbeddings(NamedTuple):
    """What every encoder returns.

    Attributes:
        user: user representations ``[U, d]`` (or ``[B, d]`` for a batch of users).
        item: item representations ``[I, d]``.
        aux_loss: an auxiliary loss to add to the training objective (e.g. the KL
            term of Mult-VAE), or ``None``.
    """

    user: Tensor
    item: Tensor
    aux_loss: Optional[Tensor] = None


class TopK(NamedTuple):
    """Top-K recommendation lists: ``indices [B, K]`` (item indices) and their ``scores [B, K]``."""

    indices: Tensor
    scores: Tensor
