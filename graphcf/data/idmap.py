"""Raw id <-> contiguous index maps for users and items."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort + diff: numpy 2's ``np.unique`` is slow on wide int ranges)."""
    x = np.sort(np.asarray(x), kind="stable")
    if len(x) == 0:
        return x
    keep = np.ones(len(x), dtype=bool)
    keep[1:] = x[1:] != x[:-1]
    return x[keep]


class Vocab:
    """One direction-complete map between raw ids and ``0..n-1`` indices.

    Raw ids are kept as they were read (``int`` or ``str``). The index order is
    the sorted order of the raw ids, so files whose ids already run ``0..n-1``
    keep their ids as indices.
    """

    def __init__(self, raw_ids: np.ndarray) -> None:
        raw_ids = np.asarray(raw_ids)
        if raw_ids.dtype.kind not in "iuUSO":
            raise TypeError(f"Vocab: raw ids must be integers or strings, got dtype {raw_ids.dtype}")
        if raw_ids.dtype.kind == "O":
            raw_ids = raw_ids.astype(str)
        uniq = _sorted_unique(raw_ids)
        if len(uniq) != len(raw_ids):
            raise ValueError("Vocab: raw ids must be unique")
        self.raw = uniq
        self._is_int = uniq.dtype.kind in "iu"
        self._identity = bool(self._is_int and (len(uniq) == 0 or (uniq[0] == 0 and uniq[-1] == len(uniq) - 1)))

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def is_identity(self) -> bool:
        """True when raw ids are exactly ``0..n-1``."""
        return self._identity

    def encode(self, raw: np.ndarray) -> np.ndarray:
        """Raw ids -> int64 indices; raises ``KeyError`` naming the first unknown id."""
        raw = np.asarray(raw)
        if raw.dtype.kind == "O":
            raw = raw.astype(str)
        if len(raw) == 0:
            return np.zeros(0, dtype=np.int64)
        if self._is_int != (raw.dtype.kind in "iu"):
            raw = raw.astype(self.raw.dtype) if self._is_int is False else raw.astype(np.int64)
        pos = np.searchsorted(self.raw, raw)
        pos_c = np.minimum(pos, max(len(self.raw) - 1, 0))
        ok = (pos < len(self.raw)) & (self.raw[pos_c] == raw) if len(self.raw) else np.zeros(len(raw), bool)
        if not ok.all():
            bad = raw[~ok][0].item()
            raise KeyError(f"unknown raw id {bad!r} ({int((~ok).sum())} unknown in total)")
        return pos.astype(np.int64)

    def decode(self, index: Any) -> np.ndarray:
        """Indices (any shape, numpy or torch) -> raw ids of the same shape."""
        idx = np.asarray(index.cpu() if hasattr(index, "cpu") else index, dtype=np.int64)
        return self.raw[idx]

    def to_list(self) -> List[Any]:
        return self.raw.tolist()


class IdMap:
    """Raw id <-> index maps for users and items, saved and reloaded as JSON.

    Example:
        >>> m = IdMap.fit(np.array(["u9", "u1"]), np.array([30, 10]))
        >>> m.encode_users(np.array(["u1"])).tolist(), m.decode_items([1]).tolist()
        ([0], [30])
    """

    def __init__(self, users: Vocab, items: Vocab) -> None:
        self.users = users
        self.items = items

    @classmethod
    def fit(cls, user_raw: np.ndarray, item_raw: np.ndarray) -> "IdMap":
        return cls(Vocab(_sorted_unique(user_raw)), Vocab(_sorted_unique(item_raw)))

    @classmethod
    def identity(cls, num_users: int, num_items: int) -> "IdMap":
        return cls(Vocab(np.arange(num_users)), Vocab(np.arange(num_items)))

    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def encode_users(self, raw: np.ndarray) -> np.ndarray:
        try:
            return self.users.encode(raw)
        except KeyError as e:
            raise KeyError(f"IdMap.encode_users: {e.args[0]}") from None

    def encode_items(self, raw: np.ndarray) -> np.ndarray:
        try:
            return self.items.encode(raw)
        except KeyError as e:
            raise KeyError(f"IdMap.encode_items: {e.args[0]}") from None

    def decode_users(self, index: Any) -> np.ndarray:
        return self.users.decode(index)

    def decode_items(self, index: Any) -> np.ndarray:
        return self.items.decode(index)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "users": self.users.to_list(),
            "items": self.items.to_list(),
        }

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "IdMap":
        return cls(Vocab(np.asarray(d["users"])), Vocab(np.asarray(d["items"])))

    def save(self, path: PathLike) -> None:
        """Write the map as JSON (atomically: temp file + rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: PathLike) -> "IdMap":
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, IdMap)
            and np.array_equal(self.users.raw, other.users.raw)
            and np.array_equal(self.items.raw, other.items.raw)
        )

    def __repr__(self) -> str:
        return f"IdMap(num_users={self.num_users}, num_items={self.num_items})"
