"""Trainer: determinism, resume after a kill, NaN guard, early stopping, baselines."""
import json

import pytest
import torch

from contracts import KillAt, Killed
from graphcf.data.synthetic import synthetic_dataset
from graphcf.losses import bpr_loss, l2_reg
from graphcf.nn.encoders import MFEncoder, PopularityEncoder
from graphcf.nn.scorers import DotScorer
from graphcf.samplers import UniformNegativeSampler
from graphcf.train import ModelFitError, Trainer, TrainConfig


@pytest.fixture(scope="module")
def data():
    d, _ = synthetic_dataset(num_users=200, num_items=120, num_clusters=4, mean_degree=15, seed=0)
    return d


def _mf(d, seed=0):
    torch.manual_seed(seed)
    return MFEncoder(d["user"].num_nodes, d["item"].num_nodes, dim=16)


CFG = dict(epochs=6, batch_size=256, lr=0.02, reg=1e-4, seed=3, patience=0, ks=(10, 20))


def test_bpr_and_l2_match_dense():
    pos, neg = torch.randn(7, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    ref = -torch.log(torch.sigmoid(pos[:, None] - neg)).mean()
    torch.testing.assert_close(bpr_loss(pos, neg), ref)
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(l2_reg(a, b), (a.norm() ** 2 + b.norm() ** 2) / 8)


def test_weighted_l2_reg_matches_loop():
    """Row r of tensor k counts w_kr times: the batch penalty computed on its unique rows."""
    a, b = torch.randn(3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    wa, wb = torch.tensor([2, 0, 1]), torch.tensor([0.5, 1.0, 3.0, 0.0], dtype=torch.float64)
    want = (sum(float(wa[r]) * float(a[r] @ a[r]) for r in range(3))
            + sum(float(wb[r]) * float(b[r] @ b[r]) for r in range(4))) / (2 * 10)
    assert float(l2_reg(a, b, batch_size=10, weights=(wa, wb))) == pytest.approx(want)
    # None: all ones; empty rows add nothing
    torch.testing.assert_close(l2_reg(a, b[:0], weights=(None, wb[:0])), l2_reg(a))
    with pytest.raises(ValueError, match="one entry per tensor"):
        l2_reg(a, b, weights=(wa,))
    with pytest.raises(ValueError, match=r"weights\[1\] must be \[4\]"):
        l2_reg(a, b, weights=(wa, wa))


def test_uniform_sampler_never_positive_and_uniform():
    ei = torch.tensor([[0, 0, 0, 1], [0, 1, 2, 3]])
    s = UniformNegativeSampler(ei, 2, 5)
    g = torch.Generator().manual_seed(0)
    users = torch.zeros(20000, dtype=torch.long)
    neg = s.sample(users, generator=g)
    assert set(neg.tolist()) == {3, 4}
    freq = torch.bincount(neg, minlength=5)[3:].float() / len(neg)
    assert torch.allclose(freq, torch.tensor([0.5, 0.5]), atol=0.02)
    many = s.sample(torch.tensor([1, 1]), num_negatives=4, generator=g)
    assert many.shape == (2, 4) and not (many == 3).any()
    with pytest.raises(ValueError, match="every item"):
        UniformNegativeSampler(torch.tensor([[0, 0], [0, 1]]), 1, 2)


def test_same_seed_same_numbers(data):
    r1 = Trainer(TrainConfig.from_flat(**CFG)).fit(_mf(data), data)
    r2 = Trainer(TrainConfig.from_flat(**CFG)).fit(_mf(data), data)
    assert r1.test == r2.test and r1.best_epoch == r2.best_epoch




def test_resume_after_kill_gives_identical_metrics(data, tmp_path):
    full = Trainer(TrainConfig.from_flat(**CFG)).fit(_mf(data), data, out_dir=tmp_path / "a")
    with pytest.raises(Killed):
        KillAt(TrainConfig.from_flat(**CFG), at=4).fit(_mf(data), data, out_dir=tmp_path / "b")
    assert not (tmp_path / "b" / "checkpoint.pt.tmp").exists()
    resumed = Trainer(TrainConfig.from_flat(**CFG)).fit(_mf(data, seed=99), data, out_dir=tmp_path / "b")
    assert resumed.test == full.test and resumed.val == full.val
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4, 5, 6]
    full_losses = [json.loads(x)["loss"] for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [json.loads(x)["loss"] for x in lines] == full_losses


def test_resume_rejects_other_config(data, tmp_path):
    Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 1})).fit(_mf(data), data, out_dir=tmp_path)
    with pytest.raises(ValueError, match="another config"):
        Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 2, "lr": 0.5})).fit(_mf(data), data, out_dir=tmp_path)


def test_nan_loss_raises(data):
    enc = _mf(data)
    with torch.no_grad():
        enc.user_emb.weight[0] = float("nan")
    with pytest.raises(ModelFitError, match="loss is nan"):
        Trainer(TrainConfig.from_flat(**CFG)).fit(enc, data)


def test_early_stopping_and_best_restore(data):
    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 40, "patience": 2, "lr": 0.05})
    res = Trainer(cfg).fit(_mf(data), data)
    evals = [h["val/recall@20"] for h in res.history]
    assert len(res.history) < 40  # stopped early
    best = max(evals)
    assert res.history[res.best_epoch - 1]["val/recall@20"] == best
    assert res.val["recall@20"] == pytest.approx(best)  # best checkpoint restored


def test_mf_beats_popularity_on_planted_structure(data):
    pop = PopularityEncoder(data["user"].num_nodes, data["item"].num_nodes)
    rp = Trainer(TrainConfig.from_flat(**CFG)).fit(pop, data)
    rm = Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 15})).fit(_mf(data), data)
    assert rm.test["recall@20"] > rp.test["recall@20"] + 0.05


def test_popularity_scores_are_counts(data):
    pop = PopularityEncoder(data["user"].num_nodes, data["item"].num_nodes)
    pop.fit_statistics(data)
    emb = pop(data)
    counts = torch.bincount(data["user", "interacts", "item"].edge_index[1], minlength=data["item"].num_nodes)
    assert torch.equal(DotScorer().score_all(emb.user[:2], emb.item)[0], counts.float())


def test_bf16_precision_trains_close_to_fp32(data):
    r32 = Trainer(TrainConfig.from_flat(**CFG)).fit(_mf(data), data)
    r16 = Trainer(TrainConfig.from_flat(**{**CFG, "precision": "bf16"})).fit(_mf(data), data)
    assert abs(r16.test["recall@20"] - r32.test["recall@20"]) < 0.1
    with pytest.raises(ValueError, match="precision"):
        TrainConfig.from_flat(precision="fp8")


def test_popularity_sampler_follows_count_power_and_avoids_positives():
    from graphcf.samplers import PopularityNegativeSampler

    # item counts 1, 2, 4, 8 (users 1..8); user 0 has item 0 as positive
    items = torch.tensor([0] + [1] * 2 + [2] * 4 + [3] * 8)
    users = torch.tensor([0] + list(range(1, 3)) + list(range(1, 5)) + list(range(1, 9)))
    s = PopularityNegativeSampler(torch.stack([users, items]), 9, 4, alpha=0.75)
    g = torch.Generator().manual_seed(0)
    neg = s.sample(torch.zeros(40000, dtype=torch.long), generator=g)
    assert not (neg == 0).any()
    w = torch.tensor([2.0, 4.0, 8.0]) ** 0.75
    freq = torch.bincount(neg, minlength=4)[1:].float() / len(neg)
    assert torch.allclose(freq, w / w.sum(), atol=0.01)


def test_pointwise_objective_batches_have_r_negatives_per_positive(data):
    from graphcf.objectives import PointwiseObjective

    obj = PointwiseObjective(num_negatives=4)
    obj.setup(data)
    ei = data["user", "interacts", "item"].edge_index
    batches = list(obj.batches(data, 1000, torch.Generator().manual_seed(0)))
    labels = torch.cat([b[2] for b in batches])
    assert int(labels.sum()) == ei.size(1) and len(labels) == 5 * ei.size(1)
    u = torch.cat([b[0] for b in batches])[labels == 0]
    i = torch.cat([b[1] for b in batches])[labels == 0]
    assert not obj.sampler.is_positive(u, i).any()


def test_best_checkpoint_restores_scorer_too(data):
    from graphcf.models import build_model

    torch.manual_seed(0)
    enc, scorer = build_model("neumf", data["user"].num_nodes, data["item"].num_nodes,
                              {"gmf_dim": 4, "mlp_dim": 8, "num_layers": 1})
    cfg = TrainConfig.from_flat(epochs=12, batch_size=256, lr=0.05, loss="bce", num_negatives=4, patience=0, seed=0)
    res = Trainer(cfg).fit(enc, data, scorer)
    best = max(h["val/recall@20"] for h in res.history)
    assert res.history[-1]["val/recall@20"] != best or res.best_epoch == len(res.history)
    assert res.val["recall@20"] == pytest.approx(best)  # encoder and fusion layer of the same epoch


def test_log_splits_match_a_fresh_run_of_that_many_epochs(data):
    long = Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 6, "eval_every": 3})).fit(_mf(data), data, log_splits=("test",))
    short = Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 3, "eval_every": 0})).fit(_mf(data), data)
    assert long.history[2]["test/recall@20"] == pytest.approx(short.test["recall@20"])
    assert "test/recall@20" not in long.history[1]


def test_bce_loss_matches_dense_formula():
    from graphcf.losses import bce_loss

    s = torch.tensor([2.0, -1.0, 0.5, 30.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    p = 1 / (1 + torch.exp(-s))
    ref = -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()
    torch.testing.assert_close(bce_loss(s, y), ref)


def test_pairwise_objective_loss_matches_explicit_formula(data):
    """BPR over 3 negatives + L2 on the batch's output rows, against a hand-written loop."""
    from graphcf.nn.encoders import Encoder
    from graphcf.objectives import PairwiseObjective

    class EgoReg(MFEncoder):  # overrides reg_embeddings: the objective must call it, not reuse rows
        def reg_embeddings(self, emb, users, *items):
            return [self.user_emb.weight[users] * 0 + 1.0]

    nu, ni = _mf(data).user_emb.num_embeddings, _mf(data).item_emb.num_embeddings
    for enc, default in ((_mf(data).double(), True), (EgoReg(nu, ni, 8).double(), False)):
        assert (type(enc).reg_embeddings is Encoder.reg_embeddings) == default
        obj = PairwiseObjective(num_negatives=3, reg=0.3)
        obj.setup(data)
        users, pos, neg = next(obj.batches(data, 16, torch.Generator().manual_seed(0)))[:3]
        got = obj.loss(enc, DotScorer(), data, (users, pos, neg))
        e = enc(data)
        terms, reg = [], 0.0
        for b in range(len(users)):
            u = e.user[users[b]]
            for j in range(3):
                terms.append(-torch.nn.functional.logsigmoid(u @ e.item[pos[b]] - u @ e.item[neg[b, j]]))
            if default:
                reg = reg + u.pow(2).sum() + e.item[pos[b]].pow(2).sum() + e.item[neg[b]].pow(2).sum()
            else:
                reg = reg + enc.user_emb.weight.shape[1]
        want = torch.stack(terms).mean() + 0.3 * reg / (2 * len(users))
        torch.testing.assert_close(got, want)


def test_lr_milestones_follow_the_step_formula(data):
    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 5, "eval_every": 0, "lr_milestones": (4, 2), "lr_gamma": 0.5})
    assert cfg.lr_milestones == (2, 4)
    res = Trainer(cfg).fit(_mf(data), data)
    assert [h["lr"] for h in res.history] == pytest.approx([0.02, 0.02, 0.01, 0.01, 0.005])
    for bad in ({"lr_gamma": 0.0}, {"lr_gamma": 1.5}, {"lr_plateau": -1}, {"lr_milestones": (0,)}):
        with pytest.raises(ValueError, match="lr_"):
            TrainConfig.from_flat(**{**CFG, **bad})


def test_plateau_decays_are_logged_and_replay_as_milestones(data):
    from graphcf.train import lr_decay_epochs

    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 12, "lr": 0.05, "lr_plateau": 1, "lr_gamma": 0.5})
    run = Trainer(cfg).fit(_mf(data), data, log_splits=("test",))
    decays = lr_decay_epochs(run.history)
    assert decays, "the schedule never triggered: the test would prove nothing"
    # each decay follows a validation that did not improve on the best so far
    best = -1.0
    for h in run.history:
        improved = h["val/recall@20"] > best
        best = max(best, h["val/recall@20"])
        if h["epoch"] < 12:  # a decay after the last epoch leaves no trace in the log
            assert (h["epoch"] in decays) == (not improved)
    # a run without validation that replays the decays as milestones is the same run
    replay = Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 12, "lr": 0.05, "eval_every": 0,
                                    "lr_milestones": decays, "lr_gamma": 0.5})).fit(_mf(data), data)
    assert [h["lr"] for h in replay.history] == pytest.approx([h["lr"] for h in run.history])
    assert replay.test["recall@20"] == pytest.approx(run.history[-1]["test/recall@20"])


def test_init_from_continues_like_a_run_that_had_the_new_config(data, tmp_path):
    Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 4})).fit(_mf(data), data, out_dir=tmp_path / "a")
    new = TrainConfig.from_flat(**{**CFG, "epochs": 7, "lr_milestones": (4,)})
    cont = Trainer(new).fit(_mf(data, seed=9), data, out_dir=tmp_path / "b",
                            init_from=tmp_path / "a" / "checkpoint.pt")
    fresh = Trainer(new).fit(_mf(data), data)
    assert [h["loss"] for h in cont.history] == pytest.approx([h["loss"] for h in fresh.history], rel=1e-6)
    assert cont.test == pytest.approx(fresh.test) and cont.best_epoch == fresh.best_epoch
    with pytest.raises(FileNotFoundError, match="init_from"):
        Trainer(new).fit(_mf(data), data, out_dir=tmp_path / "c", init_from=tmp_path / "nope.pt")


def test_kept_checkpoints_let_a_passed_epoch_take_a_new_schedule(data, tmp_path):
    """A constant-lr run that keeps every 2nd epoch's checkpoint; a decay decided later for epoch 4
    is replayed from the kept epoch-4 checkpoint and equals a fresh run with that schedule."""
    run = Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 7})).fit(_mf(data), data, out_dir=tmp_path / "a", keep_every=2)
    kept = sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir())
    assert kept == ["epoch_0002.pt", "epoch_0004.pt", "epoch_0006.pt"]
    assert torch.load(tmp_path / "a" / "checkpoints" / "epoch_0004.pt", weights_only=False)["epoch"] == 4
    new = TrainConfig.from_flat(**{**CFG, "epochs": 7, "lr_milestones": (4,)})
    cont = Trainer(new).fit(_mf(data, seed=9), data, out_dir=tmp_path / "b",
                            init_from=tmp_path / "a" / "checkpoints" / "epoch_0004.pt")
    fresh = Trainer(new).fit(_mf(data), data)
    assert [h["loss"] for h in cont.history] == pytest.approx([h["loss"] for h in fresh.history], rel=1e-6)
    assert [h["loss"] for h in cont.history[:4]] == pytest.approx([h["loss"] for h in run.history[:4]], rel=1e-6)
    assert cont.history[5]["loss"] != pytest.approx(run.history[5]["loss"], rel=1e-6)  # the decay took effect
    assert cont.test == pytest.approx(fresh.test)
    with pytest.raises(ValueError, match="keep_every"):
        Trainer(new).fit(_mf(data), data, keep_every=2)


def test_time_budget_stops_after_the_epoch_that_reaches_it(data, tmp_path, monkeypatch):
    import graphcf.train.trainer as train_mod

    clock = [0.0]
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: clock[0])
    real_epoch = Trainer._train_epoch

    def ten_seconds(self, *args, **kw):
        clock[0] += 10.0  # every training epoch "takes" 10 s; evaluation takes none
        return real_epoch(self, *args, **kw)

    monkeypatch.setattr(Trainer, "_train_epoch", ten_seconds)
    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 10, "time_budget_s": 25.0})
    res = Trainer(cfg).fit(_mf(data), data, out_dir=tmp_path)
    assert [h["epoch"] for h in res.history] == [1, 2, 3]  # 10, 20, 30 s: the third reaches 25
    assert [h["train_s"] for h in res.history] == [10.0, 10.0, 10.0]
    # the budget counts the whole run: resuming the finished run trains no further epoch
    again = Trainer(cfg).fit(_mf(data), data, out_dir=tmp_path)
    assert [h["epoch"] for h in again.history] == [1, 2, 3]
    with pytest.raises(ValueError, match="time_budget_s"):
        TrainConfig.from_flat(**{**CFG, "time_budget_s": -1})


def test_resume_accepts_a_checkpoint_from_before_a_new_config_field(data, tmp_path):
    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 2})
    Trainer(TrainConfig.from_flat(**{**CFG, "epochs": 1})).fit(_mf(data), data, out_dir=tmp_path)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    del ck["config"]["time_budget_s"]  # as written by a graphcf without that field
    ck["config"]["epochs"] = 2
    torch.save(ck, tmp_path / "checkpoint.pt")
    res = Trainer(cfg).fit(_mf(data), data, out_dir=tmp_path)
    assert [h["epoch"] for h in res.history] == [1, 2]


def test_lightgcn_cosine_softmax_shared_learns_the_planted_structure(data):
    """LightGCN with the cosine scorer and sampled softmax over shared negatives trains end
    to end and beats popularity, and its reported test metric ranks by the cosine it trained."""
    from graphcf.evaluate import full_ranking
    from graphcf.models import build_model
    from graphcf.nn.scorers import CosineScorer

    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    torch.manual_seed(0)
    enc, scorer = build_model("lightgcn", nu, ni, {"scorer": "cosine", "dim": 16, "num_layers": 2})
    assert isinstance(scorer, CosineScorer)
    cfg = TrainConfig.from_flat(**{**CFG, "epochs": 15, "lr": 0.01, "loss": "softmax", "temperature": 0.2,
                         "sampler": "shared", "num_negatives": 64})
    res = Trainer(cfg).fit(enc, data, scorer=scorer)
    pop = Trainer(TrainConfig.from_flat(**CFG)).fit(PopularityEncoder(nu, ni), data)
    assert res.test["recall@20"] > pop.test["recall@20"] + 0.05
    with torch.no_grad():
        emb = enc.eval()(data)
    again = full_ranking(emb.user, emb.item, CosineScorer(), data, split="test", ks=(10, 20))
    assert again["recall@20"] == pytest.approx(res.test["recall@20"])


def test_config_loss_errors_name_the_allowed_losses():
    with pytest.raises(ValueError, match=r"loss must be one of \['bce', 'bpr', 'margin', 'multinomial', "
                                         r"'softmax'\], got 'hinge'"):
        TrainConfig.from_flat(loss="hinge")
    with pytest.raises(ValueError, match=r"'hard_negatives' is a setting of objective\(s\) \['bpr', 'margin', "
                                         r"'softmax'\], not of 'bce'"):
        TrainConfig.from_flat(loss="bce", hard_negatives=1)
