"""Whole-dataset loaders: public split files -> (:class:`HeteroData`, :class:`IdMap`).

Every loader reads the split files with :mod:`graphcf.data.readers`, applies the *unseen*
policy, encodes all splits with one shared :class:`IdMap` (:func:`encode`) and builds the
graph with :func:`to_heterodata`: train edges are message-passing edges, ``val`` / ``test``
are held out as ``data[INTERACTS]["{split}_edge_label_index"]``.

Unseen policy (``unseen=``), for users / items that occur in a held-out split (val / test)
but in no *training interaction* (a user listed in ``train.txt`` without items counts as
unseen):

* ``"keep"`` (default): keep them in the universe (they get indices, isolated in the
  training graph) and log a warning with the counts;
* ``"drop"``: drop the held-out rows that involve them and log how many;
* ``"error"``: raise ``ValueError`` naming the file and the counts.

Users without held-out rows are simply absent from that split's edges (evaluators skip
them). A held-out (user, item) pair that is also a training pair (or a pair shared by val
and test) is reported as a warning with its count, never silently.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch_geometric.data import HeteroData

from graphcf.data.build import to_heterodata
from graphcf.data.idmap import IdMap
from graphcf.data.interactions import Interactions, RawInteractions, encode
from graphcf.data.readers import ReaderError, _read_ncf_negative, read_lightgcn, read_ncf_rating, read_triples
from graphcf.typing import INTERACTS

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["load_lightgcn_dir", "load_triples_dir", "load_ncf", "UNSEEN_POLICIES"]

#: Accepted values of the ``unseen`` argument.
UNSEEN_POLICIES = ("keep", "drop", "error")


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort based: numpy's hash-based ``np.unique`` is slow on wide int keys)."""
    x = np.sort(np.asarray(x))
    return x[np.concatenate(([True], x[1:] != x[:-1]))] if len(x) else x


def _isin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.isin(a, b)`` through a binary search in the distinct values of ``b``."""
    ub = _unique(b)
    a = np.asarray(a)
    if len(ub) == 0:
        return np.zeros(len(a), dtype=bool)
    pos = np.minimum(np.searchsorted(ub, a), len(ub) - 1)
    return ub[pos] == a


def _check_policy(unseen: str) -> None:
    if unseen not in UNSEEN_POLICIES:
        raise ValueError(f"unseen must be one of {UNSEEN_POLICIES}, got {unseen!r}")


def _heldout_file(directory: Path, names: Tuple[str, ...]) -> Optional[Path]:
    found = [directory / n for n in names if (directory / n).is_file()]
    if len(found) > 1:
        raise ValueError(f"{directory}: both {found[0].name} and {found[1].name} exist; keep only one validation file")
    return found[0] if found else None


def _split_files(directory: Path, caller: str) -> Dict[str, Path]:
    """``train.txt``, an optional ``valid.txt`` / ``val.txt`` and ``test.txt`` of ``directory``, all checked to exist."""
    files = {"train": directory / "train.txt"}
    val = _heldout_file(directory, ("valid.txt", "val.txt"))
    if val is not None:
        files["val"] = val
    files["test"] = directory / "test.txt"
    for name, f in files.items():
        if not f.is_file():
            raise FileNotFoundError(f"{caller}: {f} not found (needed for the '{name}' split)")
    return files


def _count_list_rows(path: Path) -> int:
    """Data rows of a LightGCN ``user_list.txt`` / ``item_list.txt`` (a non-numeric first line is a header)."""
    n = 0
    first = True
    with open(path, "rb") as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if first:
                first = False
                if not all(re.fullmatch(rb"-?\d+", x) for x in fields):
                    continue
            n += 1
    return n


def _apply_unseen(
    splits: Dict[str, RawInteractions], unseen: str, extra_rows: Optional[Dict[str, np.ndarray]] = None
) -> Tuple[Dict[str, RawInteractions], Dict[str, np.ndarray]]:
    """Apply the unseen policy to every held-out split.

    Returns the new splits and, for each held-out split, the indices of the kept rows
    (so aligned side tables such as NCF negatives can be subset the same way).
    """
    train = splits["train"]
    out: Dict[str, RawInteractions] = {"train": train}
    kept: Dict[str, np.ndarray] = {}
    for name, raw in splits.items():
        if name == "train":
            continue
        new_u = ~_isin(raw.user, train.user)
        new_i = ~_isin(raw.item, train.item)
        bad = new_u | new_i
        n_bad = int(bad.sum())
        if n_bad == 0:
            out[name] = raw
            kept[name] = np.arange(len(raw))
            continue
        n_users = len(_unique(raw.user[new_u]))
        n_items = len(_unique(raw.item[new_i]))
        what = (
            f"{raw.source}: {n_users} users and {n_items} items of the '{name}' split never occur in a training "
            f"interaction ({n_bad} of {len(raw)} '{name}' rows involve them)"
        )
        if unseen == "error":
            raise ValueError(what + "; pass unseen='keep' or unseen='drop'")
        if unseen == "keep":
            logger.warning("%s; keeping them (unseen='keep'): they are isolated nodes in the training graph", what)
            out[name] = raw
            kept[name] = np.arange(len(raw))
        else:
            idx = np.flatnonzero(~bad)
            logger.warning("%s; dropped those %d rows (unseen='drop')", what, n_bad)
            out[name] = RawInteractions(
                user=raw.user[idx],
                item=raw.item[idx],
                rating=None if raw.rating is None else raw.rating[idx],
                timestamp=None if raw.timestamp is None else raw.timestamp[idx],
                source=raw.source,
                extra_users=raw.extra_users[_isin(raw.extra_users, train.user)],
            )
            kept[name] = idx
    return out, kept


def _report_overlap(enc: Dict[str, Interactions], sources: Dict[str, str]) -> None:
    """Warn about held-out pairs that are also train pairs (and val/test shared pairs)."""
    keys = {name: _unique(s.keys().numpy()) for name, s in enc.items()}
    names = [n for n in enc if n != "train"]
    for name in names:
        n = int(_isin(keys[name], keys["train"]).sum())
        if n:
            logger.warning(
                "%s: %d distinct (user, item) pairs of the '%s' split are also training pairs", sources[name], n, name
            )
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            n = int(_isin(keys[a], keys[b]).sum())
            if n:
                logger.warning(
                    "%s / %s: %d distinct (user, item) pairs are in both the '%s' and '%s' splits",
                    sources[a], sources[b], n, a, b,
                )


def _identity_map(splits: Dict[str, RawInteractions], num_users: Optional[int], num_items: Optional[int],
                  extra_items: Optional[np.ndarray] = None) -> IdMap:
    """Identity map for files whose ids already are indices (universe: declared size or max id + 1)."""
    users = np.concatenate([np.concatenate([r.user, r.extra_users]) for r in splits.values()])
    items = np.concatenate([r.item for r in splits.values()] + ([extra_items] if extra_items is not None else []))
    nu = num_users if num_users is not None else (int(users.max()) + 1 if len(users) else 0)
    ni = num_items if num_items is not None else (int(items.max()) + 1 if len(items) else 0)
    where = ", ".join(r.source for r in splits.values())
    gap_u = nu - len(_unique(users))
    gap_i = ni - len(_unique(items))
    if gap_u or gap_i:
        logger.warning(
            "%s: ids are used as indices; %d of %d user ids and %d of %d item ids in the universe occur in no file "
            "(kept as isolated nodes)", where, gap_u, nu, gap_i, ni,
        )
    return IdMap.identity(nu, ni)


def _build(
    splits: Dict[str, RawInteractions], idmap: Optional[IdMap] = None
) -> Tuple[HeteroData, IdMap, Dict[str, Interactions]]:
    enc, idmap = encode(splits, idmap=idmap)
    _report_overlap(enc, {k: v.source for k, v in splits.items()})
    data = to_heterodata(enc)
    logger.info(
        "loaded %d users, %d items; %s",
        idmap.num_users, idmap.num_items, ", ".join(f"{k}: {len(v)} edges" for k, v in enc.items()),
    )
    return data, idmap, enc


def load_lightgcn_dir(directory: PathLike, unseen: str = "keep") -> Tuple[HeteroData, IdMap]:
    """Load a LightGCN / NGCF dataset directory (e.g. ``gowalla/``).

    Files: ``train.txt`` and ``test.txt`` (required), ``valid.txt`` or ``val.txt``
    (optional, becomes split ``"val"``), all in the ``USER ITEM ITEM ...`` format of
    :func:`~graphcf.data.readers.read_lightgcn`. The ids in these files already are
    contiguous indices and are kept as indices (the :class:`IdMap` is the identity). The
    universe is ``0..max id`` over all (kept) rows, or, when ``user_list.txt`` / ``item_list.txt``
    exist, their row counts (header excluded); an id at or above a declared count is a
    :class:`~graphcf.data.readers.ReaderError`. Ids of the universe that occur in no file
    are kept as isolated nodes (with a warning).

    Args:
        directory: the dataset directory.
        unseen: policy for held-out users / items without training interactions:
            ``"keep"`` (default, warn), ``"drop"`` (drop those held-out rows, warn with the
            count) or ``"error"`` (``ValueError``); see the module docstring.

    Returns:
        ``(data, idmap)``.
    """
    _check_policy(unseen)
    d = Path(directory)
    nu = _count_list_rows(d / "user_list.txt") if (d / "user_list.txt").is_file() else None
    ni = _count_list_rows(d / "item_list.txt") if (d / "item_list.txt").is_file() else None
    files = _split_files(d, "load_lightgcn_dir")
    splits = {name: read_lightgcn(f, num_users=nu, num_items=ni) for name, f in files.items()}
    splits, _ = _apply_unseen(splits, unseen)
    data, idmap, _ = _build(splits, _identity_map(splits, nu, ni))
    return data, idmap


def load_triples_dir(directory: PathLike, unseen: str = "keep") -> Tuple[HeteroData, IdMap]:
    """Load a LightGCN++ / SELFRec dataset directory of ``USER ITEM [WEIGHT]`` triples.

    Files: ``train.txt``, ``test.txt`` (required) and ``valid.txt`` or ``val.txt``
    (optional, split ``"val"``). The :class:`IdMap` is fitted over the union of the
    (kept) rows, so ids running ``0..n-1`` stay unchanged. The weight column becomes the
    edge weight.

    Args:
        directory: the dataset directory.
        unseen: ``"keep"`` (default), ``"drop"`` or ``"error"``; see the module docstring.

    Returns:
        ``(data, idmap)``.
    """
    _check_policy(unseen)
    d = Path(directory)
    files = _split_files(d, "load_triples_dir")
    splits = {name: read_triples(f) for name, f in files.items()}
    splits, _ = _apply_unseen(splits, unseen)
    data, idmap, _ = _build(splits)
    return data, idmap


def load_ncf(prefix: PathLike, unseen: str = "keep") -> Tuple[HeteroData, IdMap]:
    """Load an NCF dataset (``{prefix}.train.rating``, ``.test.rating``, ``.test.negative``).

    The ids already are indices and are kept (identity :class:`IdMap`, universe ``0..max id``
    over the three files, negatives included). Ratings become edge weights and timestamps
    edge times. The sampled negatives are stored as ``data[INTERACTS].test_neg_items``: an
    int64 ``[num_test, K]`` tensor of item indices whose row ``j`` belongs to column ``j`` of
    ``data[INTERACTS].test_edge_label_index``.

    Args:
        prefix: path prefix, e.g. ``"Data/ml-1m"``.
        unseen: ``"keep"`` (default), ``"drop"`` (the matching negative rows are dropped too)
            or ``"error"``; see the module docstring.

    Returns:
        ``(data, idmap)``.

    Raises:
        ReaderError: malformed files, or a ``.test.negative`` line whose ``(u,i)`` differs
            from the same row of ``.test.rating`` (or a different number of rows).
    """
    _check_policy(unseen)
    prefix = str(prefix)
    train_p, test_p, neg_p = prefix + ".train.rating", prefix + ".test.rating", prefix + ".test.negative"
    for p in (train_p, test_p, neg_p):
        if not os.path.isfile(p):
            raise FileNotFoundError(f"load_ncf: {p} not found")
    train = read_ncf_rating(train_p)
    test = read_ncf_rating(test_p)
    nu_, ni_, negs, neg_lines = _read_ncf_negative(neg_p)
    n = min(len(test), len(nu_))
    mism = np.flatnonzero((test.user[:n] != nu_[:n]) | (test.item[:n] != ni_[:n]))
    if len(mism):
        j = int(mism[0])
        raise ReaderError.at(
            neg_p, int(neg_lines[j]), f"(user,item) pair differs from row {j + 1} of {test_p}",
            f"({nu_[j]},{ni_[j]})", f"({test.user[j]},{test.item[j]}) as in {test_p}",
        )
    if len(test) != len(nu_):
        if len(nu_) > len(test):
            raise ReaderError.at(
                neg_p, int(neg_lines[n]), f"more rows than {test_p} ({len(nu_)} vs {len(test)})",
                f"({nu_[n]},{ni_[n]})", "one line per test.rating row",
            )
        raise ReaderError.at(
            neg_p, None, f"fewer rows than {test_p} ({len(nu_)} vs {len(test)}); row {n + 1} of {test_p} "
            f"({test.user[n]},{test.item[n]}) has no negatives", None, "one line per test.rating row",
        )
    splits, kept = _apply_unseen({"train": train, "test": test}, unseen)
    negs = negs[kept["test"]]
    idmap = _identity_map(splits, None, None, extra_items=negs.ravel())
    data, idmap, _ = _build(splits, idmap)
    data[INTERACTS].test_neg_items = torch.from_numpy(idmap.encode_items(negs.ravel()).reshape(negs.shape))
    return data, idmap
