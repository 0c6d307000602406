"""Pure preprocessing functions on :class:`RawInteractions` (each returns a new object).

Row order is preserved by every function (kept rows stay in their original relative order).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Optional, Tuple

import numpy as np

from graphcf.data.interactions import RawInteractions

logger = logging.getLogger(__name__)

__all__ = ["drop_duplicates", "binarize", "kcore", "concat"]


def _take(raw: RawInteractions, idx: np.ndarray, extra_users: Optional[np.ndarray] = None) -> RawInteractions:
    return replace(
        raw,
        user=raw.user[idx],
        item=raw.item[idx],
        rating=None if raw.rating is None else raw.rating[idx],
        timestamp=None if raw.timestamp is None else raw.timestamp[idx],
        extra_users=raw.extra_users if extra_users is None else extra_users,
    )


def _codes(raw: RawInteractions) -> Tuple[np.ndarray, np.ndarray, int, int]:
    """Dense codes of the raw user / item ids (works for integer and string ids)."""
    _, u = np.unique(raw.user, return_inverse=True)
    _, i = np.unique(raw.item, return_inverse=True)
    nu = int(u.max()) + 1 if len(u) else 0
    ni = int(i.max()) + 1 if len(i) else 0
    return u.ravel().astype(np.int64), i.ravel().astype(np.int64), nu, ni


def drop_duplicates(raw: RawInteractions, keep: str = "last") -> RawInteractions:
    """Keep one row per (user, item) pair.

    Args:
        raw: the interactions.
        keep: ``"last"`` or ``"first"``. With timestamps, ``"last"`` keeps the row with the
            latest timestamp of the pair (``"first"`` the earliest); ties, and files without
            timestamps, are broken by row order (``"last"``: the last row of the pair in the
            file, ``"first"``: the first).

    Returns:
        The kept rows, in their original order. The number of dropped rows is logged.
    """
    if keep not in ("first", "last"):
        raise ValueError(f"drop_duplicates: keep must be 'first' or 'last', got {keep!r}")
    n = len(raw)
    if n == 0:
        return _take(raw, np.zeros(0, dtype=np.int64))
    u, i, _, ni = _codes(raw)
    key = u * max(ni, 1) + i
    row = np.arange(n)
    if raw.timestamp is not None:
        order = np.lexsort((row, np.asarray(raw.timestamp), key))
    else:
        order = np.lexsort((row, key))
    sk = key[order]
    if keep == "last":
        sel = np.ones(n, dtype=bool)
        sel[:-1] = sk[:-1] != sk[1:]
    else:
        sel = np.ones(n, dtype=bool)
        sel[1:] = sk[1:] != sk[:-1]
    kept = np.sort(order[sel])
    if len(kept) < n:
        logger.info("drop_duplicates(%s): dropped %d duplicate (user, item) rows of %d", raw.source, n - len(kept), n)
    return _take(raw, kept)


def binarize(raw: RawInteractions, threshold: float) -> RawInteractions:
    """Turn explicit ratings into implicit feedback.

    Rows with ``rating >= threshold`` are kept as positive interactions and the ``rating``
    column is removed (set to ``None``: every kept row is a plain positive, weight 1);
    rows below the threshold are dropped (the count is logged). Timestamps are kept.
    ``extra_users`` is unchanged: users who lose all their rows are *not* added to it, so
    they leave the universe unless another split mentions them.

    Raises:
        ValueError: ``raw`` has no ratings.
    """
    if raw.rating is None:
        raise ValueError(f"binarize({raw.source}): the interactions have no rating column")
    mask = np.asarray(raw.rating) >= threshold
    idx = np.flatnonzero(mask)
    logger.info(
        "binarize(%s): kept %d of %d rows with rating >= %s", raw.source, len(idx), len(raw), threshold
    )
    out = _take(raw, idx)
    return replace(out, rating=None)


def kcore(raw: RawInteractions, user_k: int = 5, item_k: int = 5) -> RawInteractions:
    """The k-core: the largest subset of rows where every user has ``>= user_k`` rows and every
    item ``>= item_k`` rows.

    Filters users and items below their thresholds, recounts and repeats until nothing
    changes (the result is unique, whatever the removal order). Duplicate rows count
    separately; call :func:`drop_duplicates` first to count distinct pairs.
    ``extra_users`` (users without rows) are dropped when ``user_k > 0``.
    """
    n = len(raw)
    u, i, nu, ni = _codes(raw)
    alive = np.ones(n, dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        uc = np.bincount(u[alive], minlength=nu)
        ic = np.bincount(i[alive], minlength=ni)
        ok = alive & (uc[u] >= user_k) & (ic[i] >= item_k)
        if np.array_equal(ok, alive):
            break
        alive = ok
    idx = np.flatnonzero(alive)
    extra = raw.extra_users if user_k <= 0 else raw.extra_users[:0]
    logger.info(
        "kcore(%s, user_k=%d, item_k=%d): kept %d of %d rows after %d rounds",
        raw.source, user_k, item_k, len(idx), n, rounds,
    )
    return _take(raw, idx, extra_users=extra)


def concat(*raws: RawInteractions) -> RawInteractions:
    """Stack interaction tables row-wise (in argument order).

    ``rating`` / ``timestamp`` are kept only when every table has them; a column present in
    some tables and missing in others raises ``ValueError`` (never silently dropped).
    ``extra_users`` are united, minus users that have rows in the result.

    Raises:
        ValueError: no tables, mixed integer / string ids, or a partially present column.
    """
    if not raws:
        raise ValueError("concat: at least one RawInteractions is required")
    kinds = {np.asarray(r.user).dtype.kind in "iu" for r in raws if len(r.user)} | {
        np.asarray(r.item).dtype.kind in "iu" for r in raws if len(r.item)
    }
    if len(kinds) > 1:
        raise ValueError(
            "concat: mixing integer and string ids across tables: "
            + ", ".join(f"{r.source}: user {r.user.dtype}, item {r.item.dtype}" for r in raws)
        )
    cols = {}
    for name in ("rating", "timestamp"):
        have = [getattr(r, name) is not None for r in raws]
        if all(have):
            cols[name] = np.concatenate([getattr(r, name) for r in raws])
        elif any(have):
            missing = [r.source for r, h in zip(raws, have) if not h]
            raise ValueError(f"concat: column '{name}' is missing in {missing} but present in other tables")
        else:
            cols[name] = None
    user = np.concatenate([r.user for r in raws])
    item = np.concatenate([r.item for r in raws])
    extras = [r.extra_users for r in raws if len(r.extra_users)]
    if extras:
        extra = np.unique(np.concatenate(extras))
        extra = extra[~np.isin(extra, user)]
    else:
        extra = np.zeros(0, dtype=user.dtype if len(user) else np.int64)
    return RawInteractions(
        user=user,
        item=item,
        rating=cols["rating"],
        timestamp=cols["timestamp"],
        source="+".join(r.source for r in raws),
        extra_users=extra,
    )
