import math

import pytest
import torch

from graphcf.data import Interactions, split_edge_index, to_heterodata, user_item_csr
from graphcf.evaluate import (
    default_mask_splits,
    full_ranking,
    iter_ranking,
    ncf_protocol,
    sample_ncf_negatives,
    topk_items,
)
from graphcf.nn import CosineScorer, DotScorer
from graphcf.nn.scorers import Scorer

U, I, D = 41, 67, 8


def make_splits(seed=0, n_train=500, n_val=60, n_test=90, users_without_test=(0, 5, 6)):
    """Disjoint random train/val/test pairs; a few users get no test (and no val) item."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(U * I, generator=g)
    no_test = torch.tensor(users_without_test)
    held = keys[~torch.isin(keys // I, no_test)]
    val, test = held[:n_val], held[n_val : n_val + n_test]
    train = keys[~torch.isin(keys, torch.cat([val, test]))][:n_train]

    def mk(k):
        return Interactions(k // I, k % I, U, I)

    return {"train": mk(train), "val": mk(val), "test": mk(test)}


@pytest.fixture(scope="module")
def graph():
    splits = make_splits()
    g = torch.Generator().manual_seed(1)
    return to_heterodata(splits), torch.randn(U, D, generator=g), torch.randn(I, D, generator=g)


def sets_of(data, split):
    ei = split_edge_index(data, split)
    out = [set() for _ in range(U)]
    for u, i in ei.t().tolist():
        out[u].add(i)
    return out


def naive_metrics(hit_row, n, k):
    h = hit_row[:k]
    m = min(k, n)
    first = next((j for j, x in enumerate(h) if x), None)
    ap, seen = 0.0, 0
    for j, x in enumerate(h):
        if x:
            seen += 1
            ap += seen / (j + 1)
    return {
        "recall": sum(h) / n,
        "recall_capped": sum(h) / m,
        "ndcg": sum(x / math.log2(j + 2) for j, x in enumerate(h)) / sum(1 / math.log2(j + 2) for j in range(m)),
        "hr": float(any(h)),
        "precision": sum(h) / k,
        "mrr": 0.0 if first is None else 1 / (first + 1),
        "map": ap / m,
    }


def dense_reference(data, ue, ie, split, ks, mask_splits, scorer=None):
    scorer = scorer or DotScorer()
    scores = scorer.score_all(ue, ie).clone()
    for s in mask_splits:
        for u, items in enumerate(sets_of(data, s)):
            for i in items:
                scores[u, i] = float("-inf")
    top = torch.topk(scores, max(ks), dim=1).indices.tolist()
    held = sets_of(data, split)
    users = [u for u in range(U) if held[u]]
    out = {}
    for k in ks:
        per = [naive_metrics([int(i in held[u]) for i in top[u]], len(held[u]), k) for u in users]
        for m in per[0]:
            out[f"{m}@{k}"] = sum(p[m] for p in per) / len(per)
    out["num_users"] = len(users)
    out["num_skipped"] = U - len(users)
    return out


def assert_same(got, want):
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-6), key


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_full_ranking_matches_dense_reference(graph, chunk_size):
    data, ue, ie = graph
    ks = (3, 10, 20)
    got = full_ranking(ue, ie, DotScorer(), data, split="test", ks=ks, chunk_size=chunk_size)
    want = dense_reference(data, ue, ie, "test", ks, ["train", "val"])
    assert_same(got, want)
    assert got["num_skipped"] >= 3 and got["num_users"] + got["num_skipped"] == U


def test_full_ranking_without_val_masking_and_byte_chunks(graph):
    data, ue, ie = graph
    got = full_ranking(ue, ie, DotScorer(), data, ks=(5, 20), mask_splits=["train"],
                       max_chunk_bytes=I * 4 * 3)  # 3 users per chunk
    want = dense_reference(data, ue, ie, "test", (5, 20), ["train"])
    assert_same(got, want)
    with_val = full_ranking(ue, ie, DotScorer(), data, ks=(5, 20))
    assert with_val["recall@20"] != got["recall@20"]


def test_full_ranking_val_split_and_cosine(graph, capsys):
    data, ue, ie = graph
    assert default_mask_splits(data, "val") == ["train"]
    assert default_mask_splits(data, "test") == ["train", "val"]
    got = full_ranking(ue, ie, CosineScorer(), data, split="val", ks=(10,), chunk_size=6, progress=True)
    want = dense_reference(data, ue, ie, "val", (10,), ["train"], scorer=CosineScorer())
    assert_same(got, want)
    assert capsys.readouterr().out == ""  # library code never prints (tqdm goes to stderr)


def test_masked_items_never_in_topk(graph):
    data, ue, ie = graph
    masked = [a | b for a, b in zip(sets_of(data, "train"), sets_of(data, "val"))]
    n_eval = sum(1 for x in sets_of(data, "test") if x)
    seen = 0
    for chunk in iter_ranking(ue, ie, DotScorer(), data, split="test", k=20, chunk_size=5):
        assert chunk.hits.shape == (len(chunk.users), 20)
        for u, row in zip(chunk.users.tolist(), chunk.topk.indices.tolist()):
            assert not masked[u] & set(row)
            seen += 1
        assert torch.isfinite(chunk.topk.scores).all()
    assert seen == n_eval


def test_k_larger_than_items_and_overlap_never_hit():
    # tiny universe: 3 users, 4 items; test pair (0, 1) duplicates a train pair
    tr = Interactions(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]), 3, 4)
    te = Interactions(torch.tensor([0, 0, 1]), torch.tensor([1, 3, 2]), 3, 4)
    data = to_heterodata({"train": tr, "test": te})
    ue, ie = torch.randn(3, 2), torch.randn(4, 2)
    out = full_ranking(ue, ie, DotScorer(), data, ks=(10,))
    # users 0 and 1 have held-out pairs (user 2 is skipped); overlapping pairs count in |T|
    assert out["num_users"] == 2 and out["num_skipped"] == 1
    # user 0: |T| = 2, item 1 masked (never a hit), item 3 is among its 2 unmasked items -> 1 hit;
    # user 1: its only held-out item 2 is masked -> 0
    assert out["recall@10"] == pytest.approx((0.5 + 0.0) / 2)
    assert out["precision@10"] == pytest.approx((0.1 + 0.0) / 2)
    chunk = next(iter_ranking(ue, ie, DotScorer(), data, k=10))
    assert chunk.hits.shape == (2, 10) and chunk.topk.indices.shape == (2, 4)


@pytest.mark.filterwarnings("ignore:Sparse")
def test_topk_items_exclude_forms(graph):
    data, ue, ie = graph
    users = torch.tensor([3, 9, 10, 40])
    csr_all = user_item_csr(split_edge_index(data, "train"), U, I)
    dense_mask = csr_all.to_dense()[users] > 0
    csr = dense_mask.float().to_sparse_csr()
    ref = (ue[users] @ ie.t()).masked_fill(dense_mask, float("-inf")).topk(15, dim=1)
    for exclude in (csr, (csr.crow_indices(), csr.col_indices())):
        top = topk_items(ue[users], ie, DotScorer(), 15, exclude=exclude)
        assert torch.equal(top.indices, ref.indices)
        torch.testing.assert_close(top.scores, ref.values)
    plain = topk_items(ue[users], ie, DotScorer(), 5)
    assert torch.equal(plain.indices, (ue[users] @ ie.t()).topk(5, dim=1).indices)
    with pytest.raises(ValueError):
        topk_items(ue[users], ie, DotScorer(), I + 1)


def test_full_ranking_rejects_bad_arguments(graph):
    data, ue, ie = graph
    with pytest.raises(ValueError, match="mask the evaluated split"):
        full_ranking(ue, ie, DotScorer(), data, mask_splits=["train", "test"])
    with pytest.raises(ValueError, match="users"):
        full_ranking(ue[:-1], ie, DotScorer(), data)
    with pytest.raises(KeyError):
        full_ranking(ue, ie, DotScorer(), data, split="nope")


def test_scorers_pair_and_all_agree():
    u, v = torch.randn(5, 4), torch.randn(7, 4)
    for sc in (DotScorer(), CosineScorer(), CosineScorer(temperature=0.2)):
        full = sc.score_all(u, v)
        pairs = sc(u.repeat_interleave(7, 0), v.repeat(5, 1)).view(5, 7)
        torch.testing.assert_close(full, pairs)
    torch.testing.assert_close(CosineScorer().score_all(u, u).diagonal(), torch.ones(5))


def test_score_many_matches_pair_loop_and_gradients():
    class Plain(Scorer):  # only forward: exercises the base-class default
        def forward(self, user, item):
            return (user * item).sum(-1) * 2.0

    g = torch.Generator().manual_seed(1)
    u = torch.randn(5, 4, dtype=torch.float64, generator=g)
    items = torch.randn(5, 3, 4, dtype=torch.float64, generator=g)
    for sc in (DotScorer(), CosineScorer(), CosineScorer(temperature=0.2), Plain()):
        got = sc.score_many(u, items)
        want = torch.stack([torch.stack([sc(u[b:b + 1], items[b, j:j + 1])[0] for j in range(3)]) for b in range(5)])
        torch.testing.assert_close(got, want)
        uu, ii = u.clone().requires_grad_(), items.clone().requires_grad_()
        torch.autograd.gradcheck(lambda a, b: sc.score_many(a, b), (uu, ii))
    with pytest.raises(ValueError, match="score_many"):
        DotScorer().score_many(u, items[:4])


def test_score_pairs_matches_index_loop_and_gradients():
    """score_pairs(user, item, iu, ii)[r, m] == forward(user[iu[r]], item[ii[r, m]]), repeated indices included."""
    class Plain(Scorer):
        def forward(self, user, item):
            return (user * item).sum(-1) * 2.0

    g = torch.Generator().manual_seed(2)
    user = torch.randn(4, 3, dtype=torch.float64, generator=g)
    item = torch.randn(6, 3, dtype=torch.float64, generator=g)
    iu = torch.tensor([0, 3, 3, 1, 0])
    ii = torch.tensor([[1, 5], [0, 0], [2, 4], [5, 1], [3, 3]])
    for sc in (DotScorer(), CosineScorer(temperature=0.5), Plain()):
        got = sc.score_pairs(user, item, iu, ii)
        want = torch.tensor([[float(sc(user[iu[r]][None], item[ii[r, m]][None])[0]) for m in range(2)]
                             for r in range(5)], dtype=torch.float64)
        torch.testing.assert_close(got, want)
        a, b = user.clone().requires_grad_(), item.clone().requires_grad_()
        torch.autograd.gradcheck(lambda x, y: sc.score_pairs(x, y, iu, ii), (a, b))
    with pytest.raises(ValueError, match="score_pairs"):
        DotScorer().score_pairs(user, item, iu, ii[:4])
    with pytest.raises(ValueError, match="score_pairs"):
        DotScorer().score_pairs(user, item, iu, ii[:, 0])


# ----------------------------------------------------------------- NCF protocol


def test_ncf_protocol_matches_naive_loop():
    g = torch.Generator().manual_seed(3)
    n, m = 30, 99
    ue, ie = torch.randn(U, D, generator=g), torch.randn(300, D, generator=g)
    # integer embeddings on a few rows create exact ties with the positive
    ie[:10] = ie[:10].round()
    users = torch.randint(0, U, (n,), generator=g)
    pos = torch.randint(0, 300, (n,), generator=g)
    neg = torch.randint(0, 300, (n, m), generator=g)
    neg[:5, :3] = pos[:5, None]  # ties: the positive itself among the negatives
    ks = (1, 10)
    got = ncf_protocol(ue, ie, DotScorer(), users, pos, neg, ks=ks, max_chunk_bytes=m * D * 4 * 7)
    want = {f"{mt}@{k}": 0.0 for k in ks for mt in ("hr", "ndcg")}
    for r in range(n):
        s_pos = float(ue[users[r]] @ ie[pos[r]])
        rank = sum(float(ue[users[r]] @ ie[j]) >= s_pos for j in neg[r].tolist())
        for k in ks:
            if rank < k:
                want[f"hr@{k}"] += 1 / n
                want[f"ndcg@{k}"] += 1 / math.log2(rank + 2) / n
    for key, val in want.items():
        assert got[key] == pytest.approx(val, abs=1e-9), key
    assert got["num_users"] == n


def test_ncf_ties_count_against_positive():
    ue, ie = torch.ones(2, 3), torch.ones(200, 3)  # every score equal
    out = ncf_protocol(ue, ie, DotScorer(), torch.tensor([0, 1]), torch.tensor([0, 1]),
                       torch.arange(2, 2 + 2 * 99).view(2, 99), ks=(10, 100))
    assert out["hr@10"] == 0.0 and out["ndcg@10"] == 0.0
    assert out["hr@100"] == 1.0 and out["ndcg@100"] == pytest.approx(1 / math.log2(101))


def _ncf_data(seed=0, num_users=50, num_items=400):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(num_users * num_items, generator=g)[: num_users * 60]
    train = torch.stack([keys // num_items, keys % num_items])
    # one held-out item per user, not in train
    test_items = torch.empty(num_users, dtype=torch.long)
    for u in range(num_users):
        taken = set(train[1, train[0] == u].tolist())
        test_items[u] = next(i for i in torch.randperm(num_items, generator=g).tolist() if i not in taken)
    return train, torch.arange(num_users), test_items


@pytest.mark.parametrize("max_rounds", [8, 0])  # 0: the exact fallback path only
def test_sample_ncf_negatives_valid(max_rounds):
    train, users, items = _ncf_data()
    # a heavy user with only 105 allowed items exercises the later rounds / fallback
    allowed = sorted(set(range(400)) - set(train[1, train[0] == 7].tolist()) - {int(items[7])})
    heavy = torch.tensor(allowed[: len(allowed) - 105])
    train = torch.cat([train, torch.stack([torch.full_like(heavy, 7), heavy])], 1)
    neg = sample_ncf_negatives(train, users, items, 400, 99,
                               generator=torch.Generator().manual_seed(5), max_rounds=max_rounds)
    assert neg.shape == (50, 99) and neg.dtype == torch.long
    assert int(neg.min()) >= 0 and int(neg.max()) < 400
    pos = {(u, i) for u, i in train.t().tolist()}
    for r in range(50):
        row = neg[r].tolist()
        assert len(set(row)) == 99
        assert int(items[r]) not in row
        assert not any((r, i) in pos for i in row)


def test_sample_ncf_negatives_reproducible():
    train, users, items = _ncf_data(1)
    a = sample_ncf_negatives(train, users, items, 400, generator=torch.Generator().manual_seed(11))
    b = sample_ncf_negatives(train, users, items, 400, generator=torch.Generator().manual_seed(11))
    c = sample_ncf_negatives(train, users, items, 400, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_ncf_negatives_too_few_items():
    train = torch.stack([torch.zeros(95, dtype=torch.long), torch.arange(95)])
    with pytest.raises(ValueError, match="fewer than 99"):
        sample_ncf_negatives(train, torch.tensor([0]), torch.tensor([99]), 194)
    # exactly 99 allowed is fine and returns all of them
    neg = sample_ncf_negatives(train, torch.tensor([0]), torch.tensor([99]), 195)
    assert sorted(neg[0].tolist()) == [i for i in range(95, 195) if i != 99]


def test_ncf_evaluate_given_and_sampled_negatives():
    import torch
    from graphcf.data import Interactions, to_heterodata
    from graphcf.evaluate import ncf_evaluate
    from graphcf.nn.scorers import DotScorer
    from graphcf.typing import INTERACTS

    # 3 users, 6 items; user u's test item is u; item embedding makes item 0..2 score high for matching user
    train = Interactions(torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), 3, 6)
    test = Interactions(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), 3, 6)
    data = to_heterodata({"train": train, "test": test})
    user = torch.eye(3, 6, dtype=torch.float64)
    item = torch.eye(6, dtype=torch.float64) * torch.tensor([1.0, 1.0, 0.0, 0, 0, 0], dtype=torch.float64)[:, None]
    data[INTERACTS].test_neg_items = torch.tensor([[1, 2], [0, 2], [0, 1]])
    got = ncf_evaluate(user, item, DotScorer(), data, ks=(1,))
    # users 0 and 1 rank their item first; user 2's item scores 0 = its negatives (ties count against)
    assert got["hr@1"] == pytest.approx(2 / 3)
    del data[INTERACTS].test_neg_items
    g = torch.Generator().manual_seed(0)
    sampled = ncf_evaluate(user, item, DotScorer(), data, ks=(1,), num_negatives=4, generator=g)
    assert sampled["num_users"] == 3 and sampled["hr@1"] == pytest.approx(2 / 3)
