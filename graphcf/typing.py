"""Shared names and small result types used across graphcf."""
from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Tuple

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
        aux: the encoder's *named* auxiliary losses, e.g. ``{"kl": ...}`` (Mult-VAE's KL term) or
            ``{"l2": ...}`` (Mult-DAE's weight penalty), or ``None``. The objective weights each
            one by name (:attr:`graphcf.objectives.ObjectiveSettings.aux_weights`; the multinomial
            objective anneals the weight of ``kl``), so an encoder never multiplies its own terms.
    """

    user: Tensor
    item: Tensor
    aux: Optional[Dict[str, Tensor]] = None

    @property
    def aux_loss(self) -> Optional[Tensor]:
        """The unweighted sum of :attr:`aux` (``None`` when there is none)."""
        if not self.aux:
            return None
        return sum(self.aux.values())  # type: ignore[return-value]


class TopK(NamedTuple):
    """Top-K recommendation lists: ``indices [B, K]`` (item indices) and their ``scores [B, K]``."""

    indices: Tensor
    scores: Tensor
