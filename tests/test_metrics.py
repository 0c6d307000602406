import math

import pytest
import torch

from graphcf.metrics import (
    METRICS,
    MetricAccumulator,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    recall_capped_at_k,
)


# ----------------------------------------------------------------- naive per-user reference


def naive_user(h, n, k):
    """All metrics of one user from a Python list of 0/1 hits (rank 1 first)."""
    h = [int(x) for x in h[:k]]
    if n == 0:
        return {m: 0.0 for m in METRICS}
    m = min(k, n)
    dcg = sum(h[j] / math.log2(j + 2) for j in range(k))
    idcg = sum(1 / math.log2(j + 2) for j in range(m))
    first = next((j for j in range(k) if h[j]), None)
    ap, seen = 0.0, 0
    for j in range(k):
        if h[j]:
            seen += 1
            ap += seen / (j + 1)
    return {
        "recall": sum(h) / n,
        "recall_capped": sum(h) / m,
        "ndcg": dcg / idcg,
        "hr": float(sum(h) > 0),
        "precision": sum(h) / k,
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "map": ap / m,
    }


def random_case(seed, b=64, k=20):
    g = torch.Generator().manual_seed(seed)
    hits = torch.rand(b, k, generator=g) < torch.rand(b, 1, generator=g) * 0.5
    # |T_u| >= number of hits, sometimes much larger than K, sometimes 0 for users with no hit
    extra = torch.randint(0, 30, (b,), generator=g)
    num_rel = hits.sum(1) + extra
    num_rel[:3] = 0
    hits[:3] = False
    return hits, num_rel


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("name", list(METRICS))
def test_metric_matches_naive_loop(seed, name):
    hits, num_rel = random_case(seed)
    for k in (1, 5, 20):
        got = METRICS[name](hits, num_rel, k)
        want = torch.tensor([naive_user(hits[b].tolist(), int(num_rel[b]), k)[name] for b in range(len(hits))])
        assert got.shape == (len(hits),)
        torch.testing.assert_close(got, want.float(), atol=1e-6, rtol=1e-5)
    # default k is the width of hits
    torch.testing.assert_close(METRICS[name](hits, num_rel), METRICS[name](hits, num_rel, 20))


# ----------------------------------------------------------------- hand-worked examples


def t(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_ndcg_hand_worked():
    hits, n = t([1, 0, 1]), torch.tensor([3])
    want = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg_at_k(hits, n).item() == pytest.approx(want, abs=1e-6)
    assert want == pytest.approx(0.70392, abs=1e-5)
    # ideal DCG uses min(K, |T|) = 2 positions when |T| = 2
    want2 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(hits, torch.tensor([2])).item() == pytest.approx(want2, abs=1e-6)
    # perfect list
    assert ndcg_at_k(t([1, 1, 0]), torch.tensor([2])).item() == pytest.approx(1.0)
    # cut-off k=1 keeps only rank 1
    assert ndcg_at_k(t([0, 1, 1]), torch.tensor([3]), k=1).item() == 0.0


def test_both_recall_forms():
    hits = t([1, 0, 1])
    # |T| = 3 <= K: the two forms agree
    assert recall_at_k(hits, torch.tensor([3])).item() == pytest.approx(2 / 3)
    assert recall_capped_at_k(hits, torch.tensor([3])).item() == pytest.approx(2 / 3)
    # |T| = 5 > K = 3: LightGCN divides by 5, Mult-VAE by min(3, 5) = 3
    assert recall_at_k(hits, torch.tensor([5])).item() == pytest.approx(2 / 5)
    assert recall_capped_at_k(hits, torch.tensor([5])).item() == pytest.approx(2 / 3)
    # at k=2: 1 hit; 1/5 vs 1/2
    assert recall_at_k(hits, torch.tensor([5]), k=2).item() == pytest.approx(1 / 5)
    assert recall_capped_at_k(hits, torch.tensor([5]), k=2).item() == pytest.approx(1 / 2)


def test_other_metrics_hand_worked():
    hits, n = t([1, 0, 1], [0, 1, 1], [0, 0, 0]), torch.tensor([3, 4, 2])
    torch.testing.assert_close(precision_at_k(hits, n), torch.tensor([2 / 3, 2 / 3, 0.0]))
    torch.testing.assert_close(hit_rate_at_k(hits, n), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(mrr_at_k(hits, n), torch.tensor([1.0, 0.5, 0.0]))
    # AP: user 0: (1/1 + 2/3) / min(3, 3) = 5/9; user 1: (1/2 + 2/3) / min(3, 4) = 7/18
    torch.testing.assert_close(map_at_k(hits, n), torch.tensor([5 / 9, 7 / 18, 0.0]))


def test_zero_relevant_gives_zero_not_nan():
    hits, n = t([0, 0], [1, 0]), torch.tensor([0, 1])
    for fn in METRICS.values():
        out = fn(hits, n)
        assert torch.isfinite(out).all()
        assert out[0].item() == 0.0


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        recall_at_k(torch.zeros(3, dtype=torch.bool), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError):
        recall_at_k(torch.zeros(3, 2, dtype=torch.bool), torch.tensor([1, 1]))
    with pytest.raises(ValueError):
        recall_at_k(torch.zeros(3, 2, dtype=torch.bool), torch.tensor([1, 1, 1]), k=3)


# ----------------------------------------------------------------- accumulator


def test_accumulator_chunks_and_several_k():
    hits, num_rel = random_case(7, b=50, k=20)
    acc = MetricAccumulator(ks=(20, 5, 10))
    for s in range(0, 50, 13):
        acc.update(hits[s : s + 13], num_rel[s : s + 13])
    out = acc.compute()
    keep = [b for b in range(50) if num_rel[b] > 0]
    assert out["num_users"] == len(keep) == 47
    assert out["num_skipped"] == 3
    for k in (5, 10, 20):
        for m in METRICS:
            want = sum(naive_user(hits[b].tolist(), int(num_rel[b]), k)[m] for b in keep) / len(keep)
            assert out[f"{m}@{k}"] == pytest.approx(want, abs=1e-6), (m, k)
    assert set(out) == {f"{m}@{k}" for m in METRICS for k in (5, 10, 20)} | {"num_users", "num_skipped"}
    for key in ("recall@20", "ndcg@20", "recall_capped@20", "hr@20", "precision@20", "mrr@20", "map@20"):
        assert key in out


def test_accumulator_skip_and_empty():
    acc = MetricAccumulator(ks=(3,), metrics=["recall", "ndcg"])
    acc.update(t([1, 0, 1], [1, 1, 1]), torch.tensor([0, 0]))
    acc.skip(4)
    out = acc.compute()
    assert out["num_users"] == 0 and out["num_skipped"] == 6
    assert math.isnan(out["recall@3"])
    assert set(out) == {"recall@3", "ndcg@3", "num_users", "num_skipped"}
    acc.update(t([1, 0, 1]), torch.tensor([4]))
    out = acc.compute()
    assert out["recall@3"] == pytest.approx(0.5) and out["num_users"] == 1
    acc.reset()
    assert acc.compute()["num_skipped"] == 0


def test_accumulator_rejects_narrow_hits_and_unknown_metric():
    acc = MetricAccumulator(ks=(5, 20))
    with pytest.raises(ValueError):
        acc.update(torch.zeros(2, 10, dtype=torch.bool), torch.tensor([1, 1]))
    with pytest.raises(ValueError):
        MetricAccumulator(ks=(5,), metrics=["auc"])
