"""The model contract: one Recommender for trained and training-free models, the registries, devices,
objectives' own settings, the trainer's parts and its evaluator argument, and the errors a user meets."""
import json
import logging
import os

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from graphcf.cli import main
from graphcf.data.build import train_edge_index
from graphcf.device import resolve_device
from graphcf.evaluate import full_ranking
from graphcf.evaluators import FullRankingEvaluator, NCFEvaluator
from graphcf.model import FactorModel, Recommender, TrainingFreeModel
from graphcf.models import MODELS, make_model, register_model
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import DotScorer
from graphcf.objectives import BPRSettings, OBJECTIVES, objective_settings
from graphcf.train import EarlyStopping, LRSchedule, TimeBudget, Trainer, TrainConfig
from graphcf.typing import UserItemEmbeddings

SMALL = {"dataset": "synthetic", "synthetic": {"num_users": 120, "num_items": 80, "num_clusters": 4}}


def _data(seed=0):
    from graphcf.data.source import DataConfig, load_data

    data, _ = load_data(DataConfig(**{**SMALL, "seed": seed}))
    return data


# --------------------------------------------------------------------------- toy models (defined here)
class CooccurrenceModel(TrainingFreeModel):
    r"""A toy training-free model: scores :math:`x_u (X^T X)` with a zero diagonal (item co-occurrence)."""

    def __init__(self, num_users, num_items, power: float = 1.0):
        super().__init__(num_users, num_items)
        self.power = float(power)
        self.register_buffer("C", torch.zeros(num_items, num_items))

    def fit_closed_form(self, data):
        x = self.training_rows(data).to_dense()
        c = (x.T @ x).pow(self.power)
        c.fill_diagonal_(0)
        self.C = c

    def score_rows(self, x):
        return torch.sparse.mm(x, self.C)


class BiasEncoder(Encoder):
    """A toy trained model: an item bias plus a 4-dim MF, scored by a dot product on [e_u, 1] x [e_i, b_i]."""

    def __init__(self, num_users, num_items, dim: int = 4):
        super().__init__(num_users, num_items)
        self.user_emb = nn.Embedding(num_users, dim)
        self.item_emb = nn.Embedding(num_items, dim)
        self.bias = nn.Parameter(torch.zeros(num_items, 1))
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)

    def forward(self, data, users=None):
        u = torch.cat([self.user_emb.weight, torch.ones(self.num_users, 1)], dim=1)
        i = torch.cat([self.item_emb.weight, self.bias], dim=1)
        return UserItemEmbeddings(self.select_users(u, users), i)


@pytest.fixture
def toy_models():
    register_model("toy_cooc", CooccurrenceModel, summary="toy co-occurrence (tests)")
    register_model("toy_bias", BiasEncoder, train={"lr": 0.05}, objective={"name": "bpr", "reg": 0.0},
                   summary="toy bias MF (tests)")
    yield
    del MODELS["toy_cooc"], MODELS["toy_bias"]


def test_toy_models_end_to_end_through_registry_and_cli(toy_models, tmp_path, capsys):
    data = _data()
    # registry -> Recommender, fit, score against a dense reference
    model = make_model("toy_cooc", int(data["user"].num_nodes), int(data["item"].num_nodes), {"power": 1.0})
    assert isinstance(model, TrainingFreeModel) and MODELS["toy_cooc"].training_free
    res = Trainer(TrainConfig(ks=(10,))).fit(model, data)
    x = torch.zeros(model.num_users, model.num_items)
    ei = train_edge_index(data)
    x[ei[0], ei[1]] = 1.0
    c = x.T @ x
    c.fill_diagonal_(0)
    users = torch.tensor([0, 3, 7])
    torch.testing.assert_close(model.score(data, users), (x @ c)[users])
    assert res.best_epoch == 0 and res.test["num_users"] > 0
    # CLI: both toys, train -> evaluate -> recommend
    for name in ("toy_cooc", "toy_bias"):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({"model": name, "data": SMALL, "train": {"epochs": 3, "ks": [10]}}))
        out = tmp_path / name
        assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0, name
        got = json.loads((out / "results.json").read_text())
        assert got["model"] == name and 0 <= got["test"]["recall@10"] <= 1
        capsys.readouterr()
        assert main(["evaluate", str(out), "--ks", "10", "--no-progress"]) == 0
        assert json.loads(capsys.readouterr().out)["recall@10"] == pytest.approx(got["test"]["recall@10"])
        assert main(["recommend", str(out), "--users", "0", "3", "--k", "4"]) == 0
        lines = [json.loads(s) for s in capsys.readouterr().out.splitlines()]
        assert [len(x["items"]) for x in lines] == [4, 4]
    resolved = yaml.safe_load((tmp_path / "toy_bias" / "config.yaml").read_text())
    assert resolved["train"]["lr"] == 0.05 and resolved["objective"] == {**resolved["objective"], "name": "bpr",
                                                                        "reg": 0.0}


def test_factor_model_scores_equal_the_embedding_path():
    data = _data()
    model = make_model("mf", int(data["user"].num_nodes), int(data["item"].num_nodes), {"dim": 8})
    assert isinstance(model, FactorModel)
    emb = model.encoder(data)
    users = torch.tensor([5, 1, 2, 3])  # unsorted rows take the gather path, sorted runs a view
    torch.testing.assert_close(model.score(data, users), emb.user[users] @ emb.item.T)
    torch.testing.assert_close(model.score(data, torch.tensor([1, 2, 3])), emb.user[1:4] @ emb.item.T)
    items = torch.tensor([[0, 4], [7, 7], [1, 2], [3, 9]])
    torch.testing.assert_close(model.score(data, users, items),
                               (emb.user[users].unsqueeze(1) * emb.item[items]).sum(-1))
    # full ranking through the model's ranker == the embedding-based full_ranking
    a = FullRankingEvaluator((10, 20)).evaluate(model, data, "test")
    b = full_ranking(emb.user.detach(), emb.item.detach(), DotScorer(), data, "test", ks=(10, 20))
    assert a == pytest.approx(b)


def test_topk_excludes_seen_items_and_matches_a_naive_loop():
    data = _data()
    model = make_model("mf", int(data["user"].num_nodes), int(data["item"].num_nodes), {"dim": 8})
    users = torch.arange(20)
    top = model.topk(data, users, k=5, chunk_size=7)
    scores = model.score(data, users)
    ei = train_edge_index(data)
    for u in users.tolist():
        seen = set(ei[1, ei[0] == u].tolist())
        order = [i for i in torch.argsort(scores[u], descending=True).tolist() if i not in seen][:5]
        assert top.indices[u].tolist() == order
        assert not seen & set(top.indices[u].tolist())


def test_topk_embeds_only_the_asked_users_and_agrees_with_full_scores():
    """recommend for a few users: Mult-VAE encodes only their rows (encoder(data, users=...)), same lists."""
    data = _data()
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    model = make_model("multvae", nu, ni, {"hidden_dims": [16], "latent_dim": 8})
    calls = []
    original = model.encoder.forward

    def spy(data, users=None):
        calls.append(None if users is None else users.tolist())
        return original(data, users=users)

    model.encoder.forward = spy
    users = torch.tensor([9, 2, 9, 40])
    top = model.topk(data, users, k=6)
    assert calls == [[2, 9, 40]]  # unique, sorted, and nothing else embedded
    full = model.score(data, torch.arange(nu))
    ei = train_edge_index(data)
    full[ei[0], ei[1]] = float("-inf")
    torch.testing.assert_close(top.scores, torch.topk(full[users], 6, dim=1).values)


def test_state_dict_round_trip_and_old_layout():
    data = _data()
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    a = make_model("lightgcn", nu, ni, {"dim": 8, "num_layers": 2})
    b = make_model("lightgcn", nu, ni, {"dim": 8, "num_layers": 2})
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.score(data, torch.arange(5)), b.score(data, torch.arange(5)))
    c = make_model("lightgcn", nu, ni, {"dim": 8, "num_layers": 2})
    c.load_state_dict({"encoder": a.encoder.state_dict(), "scorer": a.scorer.state_dict()})  # older best.pt
    torch.testing.assert_close(a.score(data, torch.arange(5)), c.score(data, torch.arange(5)))


def test_encoders_declare_capabilities():
    """An encoder that overrides reg_embeddings declares which rows its L2 is on; aux names are declared."""
    for name, spec in MODELS.items():
        if not issubclass(spec.cls, Encoder):
            continue
        overrides = spec.cls.reg_embeddings is not Encoder.reg_embeddings
        assert (spec.cls.reg_rows != "output") == overrides, name
        assert spec.cls.reg_rows in ("output", "ego"), name

    class Custom(Encoder):  # an override that forgot to declare: the objectives still ask it
        def reg_embeddings(self, emb, users, *items):
            return [emb.user[users]]

    assert Custom.reg_rows == "custom"
    from graphcf.nn.encoders.vae import MultDAEEncoder, MultVAEEncoder

    assert MultVAEEncoder.aux_losses == ("kl",) and MultDAEEncoder.aux_losses == ("l2",)
    enc = MultDAEEncoder(10, 12, hidden_dims=[4], latent_dim=2, lam=0.1)
    emb = enc(_tiny_rows_graph(), users=torch.arange(3))
    assert set(emb.aux) == {"l2"}


def _tiny_rows_graph():
    from graphcf.data import to_heterodata
    from graphcf.data.interactions import Interactions

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(10), 3)
    items = rng.integers(0, 12, size=30)
    return to_heterodata({"train": Interactions(users, items, num_users=10, num_items=12)})


def test_aux_losses_are_weighted_by_name():
    from graphcf.objectives import weighted_aux

    emb = UserItemEmbeddings(torch.zeros(1), torch.zeros(1), {"kl": torch.tensor(2.0), "l2": torch.tensor(3.0)})
    assert float(weighted_aux(emb, {})) == 5.0
    assert float(weighted_aux(emb, {"kl": 0.5})) == 4.0
    assert float(weighted_aux(emb, {"kl": 0.0, "l2": 2.0})) == 6.0
    assert weighted_aux(UserItemEmbeddings(torch.zeros(1), torch.zeros(1)), {"kl": 1.0}) is None


# --------------------------------------------------------------------------- objectives own their settings
def test_objective_settings_are_typed_and_checked_where_defined():
    s = objective_settings("bpr", {"reg": "5e-3", "num_negatives": 8})  # YAML's string floats are coerced
    assert isinstance(s, BPRSettings) and s.reg == 0.005 and s.num_negatives == 8
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['margn'\].*valid keys: \[.*'margin'"):
        objective_settings("margin", {"margn": 0.2})
    with pytest.raises(ValueError, match="sampler must be one of"):
        objective_settings("bpr", {"sampler": "hard"})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        objective_settings("softmax", {"temperature": 0})
    with pytest.raises(ValueError, match=r"loss must be one of \['bce', 'bpr'"):
        TrainConfig(loss="hinge")
    assert set(OBJECTIVES) >= {"bpr", "margin", "softmax", "bce", "multinomial"}


def test_old_flat_keys_still_work_and_say_the_new_spelling(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = TrainConfig.from_flat({"loss": "margin", "reg": 0.0, "margin": 0.3, "epochs": 2})
    assert cfg.objective.margin == 0.3 and cfg.objective.reg == 0.0 and cfg.epochs == 2
    assert "objective: {name: margin" in caplog.text and "margin: 0.3" in caplog.text
    with pytest.raises(ValueError, match=r"'margin' is a setting of objective\(s\) \['margin'\], not of 'bpr'"):
        TrainConfig.from_flat({"loss": "bpr", "margin": 0.3})
    with pytest.raises(ValueError, match="valid train keys"):
        TrainConfig.from_flat({"epocs": 3})


def test_cli_unknown_objective_setting_lists_the_valid_ones(tmp_path, caplog):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"model": "mf", "data": SMALL, "objective": {"name": "bpr", "regg": 1}}))
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key(s) ['regg']" in caplog.text and "'reg'" in caplog.text and "num_negatives" in caplog.text


def test_flat_and_sectioned_configs_train_the_same(tmp_path):
    flat = {"model": "mf", "model_args": {"dim": 8}, "data": SMALL,
            "train": {"epochs": 2, "lr": 0.02, "reg": 0.001, "num_negatives": 2, "ks": [10]}}
    new = {"model": "mf", "model_args": {"dim": 8}, "data": SMALL, "train": {"epochs": 2, "lr": 0.02, "ks": [10]},
           "objective": {"name": "bpr", "reg": 0.001, "num_negatives": 2}}
    out = {}
    for name, cfg in (("flat", flat), ("new", new)):
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        assert main(["train", "--config", str(p), "--out", str(tmp_path / name), "--no-progress"]) == 0
        out[name] = json.loads((tmp_path / name / "results.json").read_text())["test"]
    assert out["flat"] == out["new"]


# --------------------------------------------------------------------------- clear errors
def test_unavailable_device_is_a_clear_error(tmp_path, caplog):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    with pytest.raises(ValueError, match="'cuda' is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="not a device name"):
        resolve_device("gpu0")
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    data = _data()
    model = make_model("mf", int(data["user"].num_nodes), int(data["item"].num_nodes), {"dim": 4})
    with pytest.raises(ValueError, match="not available"):
        Trainer(TrainConfig(epochs=1, device="cuda:1")).fit(model, data)
    assert main(["train", "--model", "mf", "--dataset", "synthetic", "--device", "cuda", "--epochs", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "'cuda' is not available" in caplog.text


def test_training_free_model_says_which_settings_it_ignores(tmp_path, caplog):
    data = _data()
    model = make_model("ease", int(data["user"].num_nodes), int(data["item"].num_nodes), {"l2": 10.0})
    with caplog.at_level(logging.WARNING):
        Trainer(TrainConfig.from_flat({"epochs": 7, "lr": 0.5, "reg": 0.1, "ks": [10]})).fit(model, data)
    assert "training-free" in caplog.text and "'epochs'" in caplog.text and "'lr'" in caplog.text
    assert "'objective'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Trainer(TrainConfig(ks=(10,))).fit(model, data)
    assert "ignored" not in caplog.text  # nothing set, nothing to say


@pytest.mark.parametrize("model", ["mf", "pinsage"])
def test_neighbor_sampling_needs_an_encoder_that_runs_on_subgraphs(model):
    data = _data()
    m = make_model(model, int(data["user"].num_nodes), int(data["item"].num_nodes), {})
    with pytest.raises(ValueError, match="does not run on sampled subgraphs"):
        Trainer(TrainConfig(epochs=1, sampling="neighbor")).fit(m, data)
    with pytest.raises(ValueError, match="uniform negatives only"):
        TrainConfig(sampling="neighbor", objective={"sampler": "popularity"})
    with pytest.raises(ValueError, match="trains BPR only"):
        TrainConfig(sampling="neighbor", loss="bce")


def test_a_metric_the_evaluator_does_not_give_is_an_error():
    data = _data()
    m = make_model("mf", int(data["user"].num_nodes), int(data["item"].num_nodes), {"dim": 4})
    with pytest.raises(ValueError, match="not computed by NCFEvaluator"):
        Trainer(TrainConfig(epochs=1, metric="recall@20"), evaluator=NCFEvaluator(num_negatives=20)).fit(m, data)


# --------------------------------------------------------------------------- trainer parts
def test_trainer_parts_by_hand():
    es = EarlyStopping(patience=2)
    assert es.update(0.1, 1) and not es.update(0.1, 2) and not es.stop and not es.update(0.05, 3) and es.stop
    assert es.state_dict() == {"best_score": 0.1, "best_epoch": 1, "bad_evals": 2}
    sched = LRSchedule(1.0, milestones=(2,), plateau=2, gamma=0.5)
    assert [sched.lr_at(e) for e in (1, 2, 3)] == [1.0, 1.0, 0.5]
    assert not sched.on_validation(False) and sched.on_validation(False) and sched.lr_at(3) == 0.25
    assert not sched.on_validation(True) and sched.state_dict() == {"plateau_evals": 0, "plateau_scale": 0.5}
    tb = TimeBudget(10)
    assert not tb.spent([{"train_s": 4}, {"train_s": 5}]) and tb.spent([{"train_s": 4}, {"train_s": 6}])
    assert not TimeBudget(0).spent([{"train_s": 1e9}])


def test_ncf_evaluator_on_the_trainer_matches_the_embedding_protocol():
    from graphcf.evaluate import ncf_protocol

    data = _data()
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    model = make_model("gmf", nu, ni, {"dim": 8})
    ev = NCFEvaluator(ks=(5, 10), num_negatives=20, seed=3)
    res = Trainer(TrainConfig.from_flat({"epochs": 2, "loss": "bce", "metric": "hr@10", "ks": [10]}),
                  evaluator=ev).fit(model, data)
    assert set(res.val) >= {"hr@5", "hr@10", "ndcg@10"} and "val/hr@10" in res.history[-1]
    users, pos, neg = ev.eval_set(data, "test")
    assert ev.eval_set(data, "test")[2] is neg  # negatives drawn once, reused
    emb = model.encoder(data)
    ref = ncf_protocol(emb.user, emb.item, model.scorer, users, pos, neg, ks=(5, 10))
    assert res.test == pytest.approx(ref, abs=1e-6)


# --------------------------------------------------------------------------- devices
TEST_DEVICE = os.environ.get("GRAPHCF_TEST_DEVICE")
needs_device = pytest.mark.skipif(not TEST_DEVICE, reason="set GRAPHCF_TEST_DEVICE (e.g. cuda) to compare a device")


@needs_device
@pytest.mark.parametrize("name,args", [("mf", {"dim": 8}), ("lightgcn", {"dim": 8, "num_layers": 2}),
                                       ("ngcf", {"dim": 8}), ("multvae", {"hidden_dims": [16], "latent_dim": 8}),
                                       ("ease", {"l2": 5.0})])
def test_device_contract_scores_equal_cpu(name, args):
    dev = resolve_device(TEST_DEVICE)
    data = _data()
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    torch.manual_seed(0)
    cpu = make_model(name, nu, ni, args)
    cpu.fit_closed_form(data)
    other = make_model(name, nu, ni, args)
    other.load_state_dict(cpu.state_dict())
    other.to(dev)
    data_dev = data.clone().to(dev)
    users = torch.arange(nu)
    torch.testing.assert_close(other.score(data_dev, users).cpu(), cpu.score(data, users), rtol=1e-4, atol=1e-4)
    top_c, top_d = cpu.topk(data, users[:10], k=5), other.topk(data_dev, users[:10], k=5)
    torch.testing.assert_close(top_d.scores.cpu(), top_c.scores, rtol=1e-4, atol=1e-4)
    a = FullRankingEvaluator((20,)).evaluate(cpu, data, "test")
    b = FullRankingEvaluator((20,)).evaluate(other, data_dev, "test")
    assert b["recall@20"] == pytest.approx(a["recall@20"], abs=1e-3)


@needs_device
@pytest.mark.parametrize("name", ["mf", "lightgcn"])
def test_device_one_epoch_equals_cpu(name):
    data = _data()
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    res = {}
    for dev in ("cpu", TEST_DEVICE):
        torch.manual_seed(0)
        m = make_model(name, nu, ni, {"dim": 8})
        r = Trainer(TrainConfig(epochs=1, lr=0.01, eval_every=1, ks=(20,), device=dev)).fit(m, data)
        res[dev] = (r.history[0]["loss"], r.test["recall@20"])
    assert res[TEST_DEVICE][0] == pytest.approx(res["cpu"][0], rel=1e-4)
    assert res[TEST_DEVICE][1] == pytest.approx(res["cpu"][1], abs=2e-3)


@needs_device
def test_device_conv_layers_equal_cpu():
    from graphcf.nn.conv import LightConv, NGCFConv

    data = _data()
    dev = resolve_device(TEST_DEVICE)
    ei = train_edge_index(data)
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    x_u, x_i = torch.randn(nu, 8), torch.randn(ni, 8)
    conv = LightConv()  # messages user -> item over the training edges
    ref = conv((x_u, x_i), ei)
    got = conv((x_u.to(dev), x_i.to(dev)), ei.to(dev))
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    ng = NGCFConv(8, 8)
    ref = ng((x_u, x_i), ei)
    got = ng.to(dev)((x_u.to(dev), x_i.to(dev)), ei.to(dev))
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-4, atol=1e-5)


def test_recommender_base_is_the_one_contract():
    assert issubclass(FactorModel, Recommender) and issubclass(TrainingFreeModel, Recommender)
    assert isinstance(make_model("ease", 5, 6, {}), Recommender)
