"""Pairwise objectives beyond uniform BPR: shared negatives, max-margin / sampled-softmax losses,
hard negatives and PinSAGE's curriculum (with an injected hard sampler; PPR itself is tested in
tests/samplers/test_ppr.py)."""
import pytest
import torch
import torch.nn.functional as F

from contracts import KillAt, Killed
from graphcf.data.synthetic import synthetic_dataset
from graphcf.losses import margin_loss, sampled_softmax_loss
from graphcf.nn.encoders import MFEncoder
from graphcf.nn.scorers import DotScorer
from graphcf.objectives import PairBatch, PairwiseObjective
from graphcf.train import Trainer, TrainConfig


@pytest.fixture(scope="module")
def data():
    d, _ = synthetic_dataset(num_users=120, num_items=80, num_clusters=4, mean_degree=12, seed=0)
    return d


def _positives(data):
    ei = data["user", "interacts", "item"].edge_index
    return set(zip(ei[0].tolist(), ei[1].tolist()))


class FixedHard:
    """Stands in for the PPR sampler: user u's hard negatives are the items (u + 1 + k) % I that
    are not positives (so tests can check which items arrive)."""

    def __init__(self, data):
        self.pos = _positives(data)
        self.ni = int(data["item"].num_nodes)
        self.calls = []

    def sample(self, users, num_negatives, generator=None):
        self.calls.append(num_negatives)
        out = []
        for u in users.tolist():
            cand = [i for i in range(self.ni) if (u, (u + 1 + i) % self.ni) not in self.pos]
            out.append([(u + 1 + cand[k % len(cand)]) % self.ni for k in range(num_negatives)])
        return torch.tensor(out, dtype=torch.long)


def test_margin_and_softmax_losses_match_loops():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    mask = torch.rand(5, 3, generator=g) > 0.3
    terms = [max(0.0, float(neg[b, j] - pos[b] + 0.2)) for b in range(5) for j in range(3) if mask[b, j]]
    assert float(margin_loss(pos, neg, 0.2, mask)) == pytest.approx(sum(terms) / len(terms))
    assert float(margin_loss(pos, neg, 0.2)) == pytest.approx(
        sum(max(0.0, float(neg[b, j] - pos[b] + 0.2)) for b in range(5) for j in range(3)) / 15)
    want = 0.0
    for b in range(5):
        logits = [float(pos[b]) / 0.5] + [float(neg[b, j]) / 0.5 for j in range(3) if mask[b, j]]
        want += -(logits[0] - torch.logsumexp(torch.tensor(logits, dtype=torch.float64), 0).item())
    assert float(sampled_softmax_loss(pos, neg, 0.5, mask)) == pytest.approx(want / 5)
    with pytest.raises(ValueError, match="margin"):
        margin_loss(pos, neg, -1.0)
    with pytest.raises(ValueError, match="temperature"):
        sampled_softmax_loss(pos, neg, 0.0)


def test_shared_negatives_batch_and_loss(data):
    obj = PairwiseObjective(num_negatives=7, reg=0.1, sampler="shared", loss="bpr")
    obj.setup(data)
    b = next(obj.batches(data, 32, torch.Generator().manual_seed(0)))
    assert isinstance(b, PairBatch) and b.shared.shape == (7,) and b.neg.shape == (32, 0)
    pos_set = _positives(data)
    for r in range(32):
        for n in range(7):
            assert bool(b.shared_valid[r, n]) == ((int(b.users[r]), int(b.shared[n])) not in pos_set)
    torch.manual_seed(0)
    enc = MFEncoder(120, 80, dim=8).double()
    got = obj.loss(enc, DotScorer(), data, b)
    e = enc(data)
    terms, reg = [], 0.0
    for r in range(32):
        u = e.user[b.users[r]]
        for n in range(7):
            if b.shared_valid[r, n]:
                terms.append(-F.logsigmoid(u @ e.item[b.pos[r]] - u @ e.item[b.shared[n]]))
        reg += u.pow(2).sum() + e.item[b.pos[r]].pow(2).sum()
    reg += e.item[b.shared].pow(2).sum()  # each shared negative once per batch, not once per row
    torch.testing.assert_close(got, torch.stack(terms).mean() + 0.1 * reg / 64)


def test_shared_negatives_are_uniform(data):
    obj = PairwiseObjective(num_negatives=50, sampler="shared")
    obj.setup(data)
    counts = torch.zeros(80)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        for b in obj.batches(data, 512, gen):
            counts += torch.bincount(b.shared, minlength=80)
    expected = counts.sum() / 80
    assert float(((counts - expected) ** 2 / expected).sum()) < 79 + 5 * (2 * 79) ** 0.5  # chi-square, 79 dof


def test_curriculum_schedule_and_hard_negatives_in_batches(data):
    obj = PairwiseObjective(num_negatives=2, hard_negatives=3, curriculum=True, curriculum_every=2)
    assert [obj.hard_count(e) for e in range(1, 10)] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert PairwiseObjective(hard_negatives=2).hard_count(1) == 2  # no curriculum: from epoch 1
    obj.hard_sampler = FixedHard(data)  # injected: setup keeps it
    obj.setup(data)
    pos_set = _positives(data)
    for epoch, width in ((1, 2), (3, 3), (7, 5)):
        obj.set_epoch(epoch)
        b = next(obj.batches(data, 16, torch.Generator().manual_seed(epoch)))
        assert b.neg.shape == (16, width)
        hard = b.neg[:, 2:]
        want = obj.hard_sampler.sample(b.users, width - 2)
        assert torch.equal(hard, want.view(16, -1))
        assert not any((int(u), int(i)) in pos_set for u, row in zip(b.users, b.neg) for i in row)


def test_margin_objective_with_hard_negatives_matches_loop(data):
    obj = PairwiseObjective(num_negatives=1, hard_negatives=2, loss="margin", margin=0.3, reg=0.0)
    obj.hard_sampler = FixedHard(data)
    obj.setup(data)
    b = next(obj.batches(data, 8, torch.Generator().manual_seed(0)))
    assert b.neg.shape == (8, 3)
    torch.manual_seed(0)
    enc = MFEncoder(120, 80, dim=8).double()
    e = enc(data)
    terms = [torch.relu(e.user[u] @ e.item[n] - e.user[u] @ e.item[p] + 0.3)
             for u, p, row in zip(b.users, b.pos, b.neg) for n in row]
    torch.testing.assert_close(obj.loss(enc, DotScorer(), data, b), torch.stack(terms).mean())


def test_trainer_runs_curriculum_and_resumes_exactly(data, tmp_path, monkeypatch):
    """A killed curriculum run resumes into the same numbers (the schedule follows the epoch)."""
    import graphcf.objectives as objectives

    monkeypatch.setattr(objectives.PairwiseObjective, "_ppr_sampler", lambda self, ei, nu, ni: FixedHard(data))
    cfg = TrainConfig.from_flat(epochs=4, batch_size=256, lr=0.02, num_negatives=1, hard_negatives=2, curriculum=True,
                      loss="margin", seed=0, patience=0, eval_every=1)

    def run(out, kill=None):
        torch.manual_seed(0)
        enc = MFEncoder(120, 80, dim=8)
        t = Trainer(cfg) if kill is None else KillAt(cfg, kill)
        return t.fit(enc, data, out_dir=out)

    ref = run(tmp_path / "a")
    with pytest.raises(Killed):
        run(tmp_path / "b", kill=3)
    resumed = run(tmp_path / "b")
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in ref.history]
    assert resumed.test == ref.test


def test_config_errors():
    with pytest.raises(ValueError, match="curriculum"):
        TrainConfig.from_flat(curriculum=True)
    with pytest.raises(ValueError, match=r"sampler must be one of \['uniform', 'popularity', 'shared'\], got 'hard'"):
        TrainConfig.from_flat(sampler="hard")
    with pytest.raises(ValueError, match=r"PairwiseObjective: sampler must be one of .*'shared'\], got 'hard'"):
        PairwiseObjective(sampler="hard")
    with pytest.raises(ValueError, match=r"'hard_negatives' is a setting of objective\(s\) \['bpr', 'margin', 'softmax'\]"):
        TrainConfig.from_flat(loss="bce", hard_negatives=1)  # hard negatives need a pairwise objective
    with pytest.raises(ValueError, match="ppr_band"):
        TrainConfig.from_flat(ppr_band=(10, 5))
    with pytest.raises(ValueError, match="neighbor"):
        TrainConfig.from_flat(sampling="neighbor", hard_negatives=1)


def test_user_pair_sampling_weights_users_equally():
    """pair_sampling='user': |E| pairs per epoch, every pair a training edge, users drawn uniformly
    among those with training items (a hand-built graph with one heavy and three light users)."""
    from torch_geometric.data import HeteroData

    from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER

    # user 0: 6 items, users 1-3: one item each, user 4: none (never drawn)
    src = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2, 3])
    dst = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 0])
    g = HeteroData()
    g[USER].num_nodes, g[ITEM].num_nodes = 5, 8
    g[INTERACTS].edge_index = torch.stack([src, dst])
    g[REV_INTERACTS].edge_index = torch.stack([dst, src])
    edges = set(zip(src.tolist(), dst.tolist()))
    gen = torch.Generator().manual_seed(0)
    obj = PairwiseObjective(num_negatives=1, pair_sampling="user")
    obj.setup(g)
    counts = torch.zeros(5)
    n_pairs = 0
    for _ in range(2000):
        batches = list(obj.batches(g, 4, gen))
        assert [len(b.users) for b in batches] == [4, 4, 1]  # |E| = 9 pairs per epoch
        for b in batches:
            assert all((u, i) in edges for u, i in zip(b.users.tolist(), b.pos.tolist()))
            assert not any((u, i) in edges for u, i in zip(b.users.tolist(), b.neg.flatten().tolist()))
            counts += torch.bincount(b.users, minlength=5).float()
            n_pairs += len(b.users)
    share = counts / n_pairs
    assert share[4] == 0
    assert torch.allclose(share[:4], torch.full((4,), 0.25), atol=0.01), share  # edge sampling: 6/9, 1/9, ...
    # edge sampling, for contrast: every edge once, so user 0 carries 6 of the 9 pairs
    obj_e = PairwiseObjective(num_negatives=1)
    obj_e.setup(g)
    users_e = torch.cat([b.users for b in obj_e.batches(g, 4, gen)])
    assert torch.equal(torch.bincount(users_e, minlength=5), torch.tensor([6, 1, 1, 1, 0]))


def test_user_pair_sampling_positives_are_uniform_per_user():
    from torch_geometric.data import HeteroData

    from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER

    g = HeteroData()
    g[USER].num_nodes, g[ITEM].num_nodes = 1, 5
    g[INTERACTS].edge_index = torch.tensor([[0, 0, 0], [1, 3, 4]])
    g[REV_INTERACTS].edge_index = g[INTERACTS].edge_index.flip(0)
    obj = PairwiseObjective(num_negatives=1, pair_sampling="user")
    obj.setup(g)
    gen = torch.Generator().manual_seed(1)
    pos = torch.cat([b.pos for _ in range(3000) for b in obj.batches(g, 3, gen)])
    share = torch.bincount(pos, minlength=5).float() / len(pos)
    assert torch.allclose(share, torch.tensor([0, 1 / 3, 0, 1 / 3, 1 / 3]), atol=0.02)


def test_pair_sampling_is_validated():
    with pytest.raises(ValueError, match="pair_sampling"):
        PairwiseObjective(pair_sampling="users")
    with pytest.raises(ValueError, match="pair_sampling"):
        TrainConfig.from_flat(pair_sampling="item")
    with pytest.raises(ValueError, match="pair_sampling='user'"):  # would be silently ignored there
        TrainConfig.from_flat(pair_sampling="user", sampling="neighbor")
    with pytest.raises(ValueError, match=r"'pair_sampling' is a setting of objective\(s\) \['bpr', 'margin', 'softmax'\]"):
        TrainConfig.from_flat(pair_sampling="user", loss="bce")


@pytest.mark.parametrize("how", ["sum", "mean"])
def test_reg_negatives_matches_hand_formula(data, how):
    """L2 term with M=4 negatives per positive, against the formula written out per row:
    (|u|^2 + |i|^2 + sum_m |j_m|^2) / 2B for "sum", the negatives' mean for "mean"."""
    obj = PairwiseObjective(num_negatives=4, reg=0.5, reg_negatives=how)
    obj.setup(data)
    b = next(obj.batches(data, 8, torch.Generator().manual_seed(0)))
    torch.manual_seed(0)
    enc = MFEncoder(120, 80, dim=8).double()
    e = enc(data)
    bpr = torch.stack([F.softplus(e.user[u] @ e.item[n] - e.user[u] @ e.item[p])
                       for u, p, row in zip(b.users, b.pos, b.neg) for n in row]).mean()
    per_row = []
    for u, p, row in zip(b.users, b.pos, b.neg):
        neg = sum(float(e.item[n].square().sum()) for n in row)
        per_row.append(float(e.user[u].square().sum()) + float(e.item[p].square().sum())
                       + (neg if how == "sum" else neg / 4))
    expected = bpr + 0.5 * sum(per_row) / (2 * 8)
    torch.testing.assert_close(obj.loss(enc, DotScorer(), data, b), expected)


def test_reg_negatives_is_validated():
    with pytest.raises(ValueError, match="reg_negatives"):
        PairwiseObjective(reg_negatives="avg")
    with pytest.raises(ValueError, match="reg_negatives"):
        TrainConfig.from_flat(reg_negatives="avg")
    assert TrainConfig.from_flat(reg_negatives="mean").make_objective().reg_negatives == "mean"
    with pytest.raises(ValueError, match="reg_negatives='mean'"):  # would be silently ignored there
        TrainConfig.from_flat(reg_negatives="mean", sampling="neighbor")
    with pytest.raises(ValueError, match=r"'reg_negatives' is a setting of objective\(s\)"):
        TrainConfig.from_flat(reg_negatives="mean", loss="bce")


def _encoders():
    from graphcf.nn.encoders import LightGCNEncoder, NGCFEncoder
    torch.manual_seed(3)
    return {"mf": MFEncoder(120, 80, dim=6).double(),
            "lightgcn": LightGCNEncoder(120, 80, dim=6, num_layers=2).double(),
            "ngcf": NGCFEncoder(120, 80, dim=6, layer_dims=(5, 4), mess_dropout=0.0).double()}


@pytest.mark.parametrize("name", ["mf", "lightgcn", "ngcf"])
@pytest.mark.parametrize("how,m", [("sum", 4), ("mean", 4), ("sum", 1)])
def test_fused_loss_and_grads_equal_gathered_path(data, name, how, m):
    """The unique-row path (fused=True, the default) against the gathered reference path:
    same loss and same parameter gradients in float64, for output-row (MF) and ego-row
    (LightGCN, NGCF) L2 penalties, summed or averaged negatives, and 1-D negatives (M=1)."""
    enc = _encoders()[name]
    fused = PairwiseObjective(num_negatives=m, reg=0.3, reg_negatives=how)
    plain = PairwiseObjective(num_negatives=m, reg=0.3, reg_negatives=how, fused=False)
    fused.setup(data)
    plain.setup(data)
    b = next(fused.batches(data, 64, torch.Generator().manual_seed(2)))
    assert b.neg.dim() == (2 if m > 1 else 1)
    assert len(torch.unique(b.users)) < len(b.users)  # repeats exercise the count weights
    losses, grads = [], []
    for obj in (fused, plain):
        enc.zero_grad()
        loss = obj.loss(enc, DotScorer(), data, b)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in enc.parameters()])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=1e-12)
    for g_f, g_p in zip(*grads):
        torch.testing.assert_close(g_f, g_p, rtol=1e-10, atol=1e-12)


def test_unique_row_path_serves_any_scorer(data):
    """A scorer without a fused formula (cosine, softmax loss) goes through the unique-row path too,
    via the base Scorer.score_pairs, with the gathered path's loss and gradients."""
    from graphcf.nn.scorers import CosineScorer
    enc = _encoders()["lightgcn"]
    sc = CosineScorer(temperature=0.2)
    kw = dict(num_negatives=4, reg=0.3, reg_negatives="mean", loss="softmax", temperature=0.2)
    fused, plain = PairwiseObjective(**kw), PairwiseObjective(**kw, fused=False)
    fused.setup(data)
    plain.setup(data)
    b = next(fused.batches(data, 64, torch.Generator().manual_seed(4)))
    calls = []
    orig = CosineScorer.score_pairs
    losses, grads = [], []
    for obj in (fused, plain):
        enc.zero_grad()
        CosineScorer.score_pairs = lambda self, *a: calls.append(1) or orig(self, *a)
        try:
            loss = obj.loss(enc, sc, data, b)
        finally:
            CosineScorer.score_pairs = orig
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in enc.parameters()])
    assert len(calls) == 1  # the fused objective used score_pairs, the gathered one did not
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-12, atol=1e-12)
    for g_f, g_p in zip(*grads):
        torch.testing.assert_close(g_f, g_p, rtol=1e-10, atol=1e-12)


def test_fused_falls_back_for_reg_embeddings_not_one_row_per_id(data):
    """An override that does not return (user rows, item rows) for the unique ids is asked for the
    batch's gathered rows instead, and the loss equals the gathered path's."""
    class Odd(MFEncoder):
        def reg_embeddings(self, emb, users, *items):
            return [self.user_emb.weight[users], *(2 * self.item_emb.weight[i] for i in items)]

    torch.manual_seed(0)
    enc = Odd(120, 80, dim=4).double()
    for how in ("sum", "mean"):
        fused = PairwiseObjective(num_negatives=3, reg=0.7, reg_negatives=how)
        fused.setup(data)
        b = next(fused.batches(data, 16, torch.Generator().manual_seed(0)))
        got = fused.loss(enc, DotScorer(), data, b)
        want = PairwiseObjective(num_negatives=3, reg=0.7, reg_negatives=how, fused=False).loss(enc, DotScorer(), data, b)
        torch.testing.assert_close(got, want)
        e = enc(data)  # and against the hand formula
        bpr = torch.stack([F.softplus(e.user[u] @ e.item[n] - e.user[u] @ e.item[p])
                           for u, p, row in zip(b.users, b.pos, b.neg) for n in row]).mean()
        reg = sum(float(e.user[u] @ e.user[u]) + 4 * float(e.item[p] @ e.item[p])
                  + 4 * sum(float(e.item[n] @ e.item[n]) for n in row) / (1 if how == "sum" else 3)
                  for u, p, row in zip(b.users, b.pos, b.neg))
        torch.testing.assert_close(got, bpr + 0.7 * reg / 32)
