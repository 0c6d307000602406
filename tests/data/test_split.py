"""Splitters against naive per-user references."""
from collections import defaultdict

import pytest
import torch

from graphcf.data import Interactions
from graphcf.data.split import carve_validation, leave_one_out, random_split


def _random_inter(seed=0, U=30, I=60, E=600, ts=True):
    g = torch.Generator().manual_seed(seed)
    key = torch.unique(torch.randint(0, U * I, (E,), generator=g))
    u, i = key // I, key % I
    t = torch.randperm(len(u), generator=g) if ts else None
    return Interactions(u, i, U, I, timestamp=t)


def _pairs(x):
    return set(zip(x.user.tolist(), x.item.tolist()))


def test_random_split_partitions_per_user():
    x = _random_inter()
    s = random_split(x, (0.8, 0.1, 0.1), seed=3)
    parts = [_pairs(s[k]) for k in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(x)
    assert set().union(*parts) == _pairs(x)
    n = torch.bincount(x.user, minlength=x.num_users)
    for name, r in (("test", 0.1), ("val", 0.1)):
        got = torch.bincount(s[name].user, minlength=x.num_users)
        assert torch.equal(got, torch.floor(n.double() * r).long().clamp(max=(n - 1).clamp(min=0)))
    # every user with items keeps at least one training item
    assert (torch.bincount(s["train"].user, minlength=x.num_users)[n > 0] >= 1).all()


def test_random_split_seeded():
    x = _random_inter()
    a, b, c = random_split(x, seed=1), random_split(x, seed=1), random_split(x, seed=2)
    assert _pairs(a["test"]) == _pairs(b["test"]) != _pairs(c["test"])
    with pytest.raises(ValueError, match="summing to 1"):
        random_split(x, (0.5, 0.1))


def test_leave_one_out_matches_naive():
    x = _random_inter(seed=4)
    s = leave_one_out(x, seed=0)
    rows = defaultdict(list)
    for u, i, t in zip(x.user.tolist(), x.item.tolist(), x.timestamp.tolist()):
        rows[u].append((t, i))
    exp_test, exp_val = set(), set()
    for u, r in rows.items():
        r.sort(reverse=True)
        if len(r) >= 2:
            exp_test.add((u, r[0][1]))
        if len(r) >= 3:
            exp_val.add((u, r[1][1]))
    assert _pairs(s["test"]) == exp_test
    assert _pairs(s["val"]) == exp_val
    assert len(s["train"]) + len(s["val"]) + len(s["test"]) == len(x)


def test_leave_one_out_ties_broken_by_seed_and_needs_time():
    x = Interactions(torch.zeros(5, dtype=torch.long), torch.arange(5), 1, 5, timestamp=torch.zeros(5, dtype=torch.long))
    tests = {leave_one_out(x, with_val=False, seed=s)["test"].item.item() for s in range(20)}
    assert len(tests) > 1  # random tie break
    assert leave_one_out(x, seed=7)["test"].item.tolist() == leave_one_out(x, seed=7)["test"].item.tolist()
    with pytest.raises(ValueError, match="no timestamp"):
        leave_one_out(_random_inter(ts=False))


def test_carve_validation():
    x = _random_inter(seed=5)
    tr, va = carve_validation(x, 0.2, seed=0)
    assert _pairs(tr) | _pairs(va) == _pairs(x) and not (_pairs(tr) & _pairs(va))
    n = torch.bincount(x.user, minlength=x.num_users)
    got = torch.bincount(va.user, minlength=x.num_users)
    exp = torch.minimum(torch.floor(n.double() * 0.2).long().clamp(min=1), (n - 1).clamp(min=0))
    assert torch.equal(got, exp)
    with pytest.raises(ValueError, match="ratio"):
        carve_validation(x, 1.5)
