"""Interaction tables: raw (file ids) and encoded (contiguous indices)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from graphcf.data.idmap import IdMap

logger = logging.getLogger(__name__)


@dataclass
class RawInteractions:
    """Interactions as read from a file, with the file's own (raw) ids.

    Attributes:
        user: raw user ids ``[E]`` (an integer or string numpy array).
        item: raw item ids ``[E]``.
        rating: optional explicit rating / weight ``[E]`` (float).
        timestamp: optional timestamp ``[E]`` (int64).
        source: where the rows came from (a file name), used in error messages.
        extra_users: raw ids of users that exist but have no row here (e.g. a
            LightGCN line ``"17"`` with no items); they still get an index.
    """

    user: np.ndarray
    item: np.ndarray
    rating: Optional[np.ndarray] = None
    timestamp: Optional[np.ndarray] = None
    source: str = "<memory>"
    extra_users: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = len(self.user)
        for name in ("item", "rating", "timestamp"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(
                    f"RawInteractions from {self.source}: column '{name}' has {len(arr)} rows, "
                    f"expected {n} (as many as 'user')"
                )

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class Interactions:
    """Encoded interactions: contiguous ``0..U-1`` user and ``0..I-1`` item indices.

    Attributes:
        user: ``[E]`` int64 user indices.
        item: ``[E]`` int64 item indices.
        num_users: size of the user universe ``U``.
        num_items: size of the item universe ``I``.
        weight: optional ``[E]`` float edge weight (e.g. the rating).
        timestamp: optional ``[E]`` int64 timestamp.
    """

    user: Tensor
    item: Tensor
    num_users: int
    num_items: int
    weight: Optional[Tensor] = None
    timestamp: Optional[Tensor] = None

    def __post_init__(self) -> None:
        self.user = torch.as_tensor(self.user, dtype=torch.long)
        self.item = torch.as_tensor(self.item, dtype=torch.long)
        if self.user.dim() != 1 or self.user.shape != self.item.shape:
            raise ValueError(
                f"Interactions: 'user' and 'item' must be 1-D of equal length, got "
                f"{tuple(self.user.shape)} and {tuple(self.item.shape)}"
            )
        if self.weight is not None:
            self.weight = torch.as_tensor(self.weight, dtype=torch.float)
        if self.timestamp is not None:
            self.timestamp = torch.as_tensor(self.timestamp, dtype=torch.long)
        if len(self.user):
            if int(self.user.min()) < 0 or int(self.item.min()) < 0:
                raise ValueError("Interactions: negative user or item index")
            if int(self.user.max()) >= self.num_users:
                raise ValueError(
                    f"Interactions: user index {int(self.user.max())} >= num_users={self.num_users}"
                )
            if int(self.item.max()) >= self.num_items:
                raise ValueError(
                    f"Interactions: item index {int(self.item.max())} >= num_items={self.num_items}"
                )

    def __len__(self) -> int:
        return int(self.user.numel())

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]`` tensor, row 0 users, row 1 items."""
        return torch.stack([self.user, self.item])

    def subset(self, index: Tensor) -> "Interactions":
        """Rows selected by a boolean mask or an index tensor."""
        return replace(
            self,
            user=self.user[index],
            item=self.item[index],
            weight=None if self.weight is None else self.weight[index],
            timestamp=None if self.timestamp is None else self.timestamp[index],
        )

    def keys(self) -> Tensor:
        """One int64 key per row, ``user * num_items + item`` (for set operations)."""
        return self.user * self.num_items + self.item


def encode(
    splits: Mapping[str, RawInteractions],
    idmap: Optional[IdMap] = None,
    num_users: Optional[int] = None,
    num_items: Optional[int] = None,
) -> Tuple[Dict[str, Interactions], IdMap]:
    """Map raw ids of one or more splits to contiguous indices with one shared :class:`IdMap`.

    The id map is fitted over the union of all splits (plus ``extra_users``)
    unless ``idmap`` is given, in which case unknown ids raise ``KeyError``.
    ``num_users`` / ``num_items`` enlarge the universe beyond the ids seen
    (for files whose ids are already contiguous indices).
    """
    if idmap is None:
        idmap = IdMap.fit(
            np.concatenate([np.concatenate([r.user, r.extra_users]) for r in splits.values()]),
            np.concatenate([r.item for r in splits.values()]),
        )
    nu = max(idmap.num_users, num_users or 0)
    ni = max(idmap.num_items, num_items or 0)
    out: Dict[str, Interactions] = {}
    for name, raw in splits.items():
        out[name] = Interactions(
            user=torch.from_numpy(idmap.encode_users(raw.user)),
            item=torch.from_numpy(idmap.encode_items(raw.item)),
            num_users=nu,
            num_items=ni,
            weight=None if raw.rating is None else torch.from_numpy(np.asarray(raw.rating, dtype=np.float32)),
            timestamp=None if raw.timestamp is None else torch.from_numpy(np.asarray(raw.timestamp, dtype=np.int64)),
        )
    return out, idmap
