"""Tests of graphcf.data.preprocess."""
from __future__ import annotations

import numpy as np
import pytest

from graphcf.data import RawInteractions
from graphcf.data.preprocess import binarize, concat, drop_duplicates, kcore


def raw(user, item, rating=None, timestamp=None, extra=None, source="t"):
    kw = {}
    if extra is not None:
        kw["extra_users"] = np.asarray(extra)
    return RawInteractions(
        np.asarray(user), np.asarray(item),
        rating=None if rating is None else np.asarray(rating, dtype=float),
        timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
        source=source, **kw,
    )


# ------------------------------------------------------------------ drop_duplicates


def test_drop_duplicates_row_order_without_timestamps():
    r = raw([0, 1, 0, 0, 1], [5, 6, 5, 7, 6], rating=[1, 2, 3, 4, 5])
    last = drop_duplicates(r)
    # kept rows: 2 (last of (0,5)), 3 (0,7), 4 (last of (1,6)), in original order
    assert last.user.tolist() == [0, 0, 1] and last.item.tolist() == [5, 7, 6]
    assert last.rating.tolist() == [3, 4, 5]
    first = drop_duplicates(r, keep="first")
    assert first.rating.tolist() == [1, 2, 4]
    assert len(r) == 5  # input untouched


def test_drop_duplicates_uses_timestamps():
    # (0,5) at t=30 (row 0) is later than t=10 (row 2): "last" keeps row 0
    r = raw([0, 1, 0, 0], [5, 6, 5, 5], rating=[1, 2, 3, 4], timestamp=[30, 1, 10, 30])
    out = drop_duplicates(r, keep="last")
    # ties at t=30 between rows 0 and 3: the later row (3) wins
    assert out.rating.tolist() == [2, 4]
    out = drop_duplicates(r, keep="first")
    assert out.rating.tolist() == [2, 3]
    assert out.timestamp.tolist() == [1, 10]


def test_drop_duplicates_string_ids_and_bad_keep():
    r = raw(np.array(["a", "b", "a"]), np.array(["x", "x", "x"]), rating=[1, 2, 3])
    out = drop_duplicates(r)
    assert out.user.tolist() == ["b", "a"] and out.rating.tolist() == [2, 3]
    with pytest.raises(ValueError):
        drop_duplicates(r, keep="max")


# ------------------------------------------------------------------ binarize


def test_binarize():
    r = raw([0, 0, 1, 2], [1, 2, 1, 3], rating=[5, 3.5, 4, 1], timestamp=[1, 2, 3, 4], extra=[9])
    out = binarize(r, 4)
    assert out.user.tolist() == [0, 1] and out.item.tolist() == [1, 1]
    assert out.rating is None
    assert out.timestamp.tolist() == [1, 3]
    assert out.extra_users.tolist() == [9]
    assert r.rating is not None
    with pytest.raises(ValueError, match="no rating"):
        binarize(raw([0], [1]), 1)


# ------------------------------------------------------------------ kcore


def naive_kcore(users, items, uk, ik):
    rows = list(range(len(users)))
    while True:
        uc, ic = {}, {}
        for r in rows:
            uc[users[r]] = uc.get(users[r], 0) + 1
            ic[items[r]] = ic.get(items[r], 0) + 1
        # remove users first, then items, one at a time (a different order than kcore uses)
        bad_u = {u for u, c in uc.items() if c < uk}
        if bad_u:
            rows = [r for r in rows if users[r] not in bad_u]
            continue
        bad_i = {i for i, c in ic.items() if c < ik}
        if bad_i:
            rows = [r for r in rows if items[r] not in bad_i]
            continue
        return rows


@pytest.mark.parametrize("seed,uk,ik", [(0, 5, 5), (1, 3, 7), (2, 10, 2), (3, 1, 1), (4, 6, 6)])
def test_kcore_matches_naive(seed, uk, ik):
    rng = np.random.default_rng(seed)
    n = 3000
    users = (rng.zipf(1.6, n) % 200).astype(np.int64)
    items = (rng.zipf(1.4, n) % 300).astype(np.int64)
    r = raw(users, items, rating=np.arange(n))
    out = kcore(r, uk, ik)
    want = naive_kcore(users.tolist(), items.tolist(), uk, ik)
    assert out.rating.astype(int).tolist() == want  # same rows, original order
    if len(out):
        assert np.bincount(np.unique(out.user, return_inverse=True)[1]).min() >= uk
        assert np.bincount(np.unique(out.item, return_inverse=True)[1]).min() >= ik


def test_kcore_cascade_string_ids_and_extra_users():
    # user c has 2 items; item z only c: dropping z drops c under 2-core
    r = raw(np.array(["a", "a", "b", "b", "c", "c"]), np.array(["x", "y", "x", "y", "x", "z"]), extra=np.array(["d"]))
    out = kcore(r, 2, 2)
    assert sorted(zip(out.user.tolist(), out.item.tolist())) == [("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")]
    assert len(out.extra_users) == 0
    assert kcore(r, 0, 0).extra_users.tolist() == ["d"]


# ------------------------------------------------------------------ concat


def test_concat():
    a = raw([0, 1], [2, 3], rating=[1, 2], timestamp=[5, 6], extra=[7, 1], source="a")
    b = raw([2], [4], rating=[3], timestamp=[7], source="b")
    c = concat(a, b)
    assert c.user.tolist() == [0, 1, 2] and c.item.tolist() == [2, 3, 4]
    assert c.rating.tolist() == [1, 2, 3] and c.timestamp.tolist() == [5, 6, 7]
    assert c.extra_users.tolist() == [7]
    assert c.source == "a+b"
    with pytest.raises(ValueError, match="rating"):
        concat(a, raw([2], [4], timestamp=[1], source="b"))
    with pytest.raises(ValueError, match="mixing"):
        concat(a, raw(np.array(["u"]), np.array(["i"])))
    with pytest.raises(ValueError):
        concat()
