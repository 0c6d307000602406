"""Encoded interaction splits -> bipartite :class:`~torch_geometric.data.HeteroData`."""
from __future__ import annotations

import logging
import warnings
from typing import Mapping

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.interactions import Interactions
from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER

logger = logging.getLogger(__name__)


def to_heterodata(splits: Mapping[str, Interactions]) -> HeteroData:
    """Build the graph that every graphcf model consumes.

    ``splits["train"]`` becomes ``data[INTERACTS].edge_index`` (users in row 0,
    items in row 1) and its reverse ``data[REV_INTERACTS].edge_index``: these are
    the *only* edges used for message passing. Every other split ``name`` (``val``,
    ``test``) is held out as ``data[INTERACTS][f"{name}_edge_label_index"]``
    ``[2, E_name]``. Edge weights and timestamps, when present, go to
    ``edge_weight`` / ``time`` (and ``{name}_edge_weight`` / ``{name}_time``).

    Args:
        splits: a mapping with at least ``"train"``; all splits share one universe.
    """
    if "train" not in splits:
        raise ValueError(f"to_heterodata: a 'train' split is required, got {sorted(splits)}")
    train = splits["train"]
    for name, s in splits.items():
        if (s.num_users, s.num_items) != (train.num_users, train.num_items):
            raise ValueError(
                f"to_heterodata: split '{name}' has universe ({s.num_users} users, {s.num_items} items) "
                f"but 'train' has ({train.num_users}, {train.num_items}); encode all splits with one IdMap"
            )
    data = HeteroData()
    data[USER].num_nodes = train.num_users
    data[ITEM].num_nodes = train.num_items
    store = data[INTERACTS]
    store.edge_index = train.edge_index
    rev = data[REV_INTERACTS]
    rev.edge_index = train.edge_index.flip(0)
    if train.weight is not None:
        store.edge_weight = train.weight
        rev.edge_weight = train.weight
    if train.timestamp is not None:
        store.time = train.timestamp
        rev.time = train.timestamp
    for name, s in splits.items():
        if name == "train":
            continue
        store[f"{name}_edge_label_index"] = s.edge_index
        if s.weight is not None:
            store[f"{name}_edge_weight"] = s.weight
        if s.timestamp is not None:
            store[f"{name}_time"] = s.timestamp
    return data


def train_edge_index(data: HeteroData) -> Tensor:
    """``[2, E]`` training edges (users row 0, items row 1)."""
    return data[INTERACTS].edge_index


def split_edge_index(data: HeteroData, split: str) -> Tensor:
    """``[2, E_split]`` held-out edges of ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
    if split == "train":
        return train_edge_index(data)
    key = f"{split}_edge_label_index"
    store = data[INTERACTS]
    if key not in store:
        have = [k[: -len("_edge_label_index")] for k in store.keys() if k.endswith("_edge_label_index")]
        raise KeyError(f"split '{split}' not in this graph; it has train and {have}")
    return store[key]


def has_split(data: HeteroData, split: str) -> bool:
    return split == "train" or f"{split}_edge_label_index" in data[INTERACTS]


def num_users_items(data: HeteroData) -> tuple[int, int]:
    return int(data[USER].num_nodes), int(data[ITEM].num_nodes)


def interactions_of(data: HeteroData, split: str) -> Interactions:
    """The interactions of one split of a built graph, back as :class:`Interactions`."""
    nu, ni = num_users_items(data)
    ei = split_edge_index(data, split)
    store = data[INTERACTS]
    wkey, tkey = ("edge_weight", "time") if split == "train" else (f"{split}_edge_weight", f"{split}_time")
    return Interactions(
        ei[0], ei[1], nu, ni,
        weight=store[wkey] if wkey in store else None,
        timestamp=store[tkey] if tkey in store else None,
    )


def user_item_csr(edge_index: Tensor, num_users: int, num_items: int) -> "torch.Tensor":
    """Binary user x item adjacency as a ``torch.sparse_csr`` tensor (duplicates summed then clipped)."""
    # np.sort is ~30x faster than torch.unique/torch.sort for int64 keys on CPU
    key = np.sort((edge_index[0].long() * num_items + edge_index[1].long()).cpu().numpy())
    if len(key):
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    key = torch.from_numpy(key)
    rows, cols = key // num_items, key % num_items
    crow = torch.zeros(num_users + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(torch.bincount(rows, minlength=num_users), 0)
    with warnings.catch_warnings():  # torch flags CSR as beta on every construction
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, torch.ones(len(cols)), size=(num_users, num_items),
                                       check_invariants=False)
