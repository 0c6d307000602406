"""NCF family (GMF, MLP, NeuMF): scorers against dense references, pretraining fusion, registry, a tiny fit."""
import pytest
import torch
import torch.nn.functional as F

from graphcf.data.synthetic import synthetic_dataset
from graphcf.evaluate import _chunk_rows, full_ranking
from graphcf.models import MODELS, build_model, default_sections, default_train_args
from graphcf.nn.encoders import PopularityEncoder
from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder, mlp_embedding_dim
from graphcf.nn.scorers import DotScorer
from graphcf.nn.scorers_ncf import GMFScorer, MLPScorer, MLPTower, NeuMFScorer, neumf_from_pretrained
from graphcf.train import Trainer, TrainConfig

NU, NI = 9, 13


@pytest.fixture(scope="module")
def data():
    d, _ = synthetic_dataset(num_users=200, num_items=120, num_clusters=4, mean_degree=15, seed=0)
    return d


def _randomize(module, seed, std=0.7):
    """Non-trivial float64 weights (the paper's 0.01 init makes every score ~0)."""
    g = torch.Generator().manual_seed(seed)
    module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * std)
    return module


# ------------------------------------------------------------------ dense references (explicit loops)


def ref_tower(layers, p, q):
    """Row-by-row tower: z = [p; q]; z = max(W z + b, 0) per layer (explicit weights)."""
    z = torch.cat([p, q])
    for w, b in layers:
        z = torch.clamp(w @ z + b, min=0.0)
    return z


def ref_gmf(h, p, q):
    return sum(h[k] * p[k] * q[k] for k in range(len(h)))


def ref_mlp(layers, h, p, q):
    z = ref_tower(layers, p, q)
    return sum(h[k] * z[k] for k in range(len(h)))


def ref_neumf(g, layers, h, p, q):
    phi = torch.cat([p[:g] * q[:g], ref_tower(layers, p[g:], q[g:])])
    return sum(h[k] * phi[k] for k in range(len(h)))


def weights_of(scorer):
    layers = [(l.weight.detach(), l.bias.detach()) for l in scorer.tower.layers] if hasattr(scorer, "tower") else []
    return layers, scorer.h.weight.detach()[0]


def reference(scorer, p, q):
    layers, h = weights_of(scorer)
    if isinstance(scorer, GMFScorer):
        return ref_gmf(h, p, q)
    if isinstance(scorer, MLPScorer):
        return ref_mlp(layers, h, p, q)
    return ref_neumf(scorer.gmf_dim, layers, h, p, q)


SCORER_CASES = [
    ("gmf", lambda: GMFScorer(4)),
    ("mlp0", lambda: MLPScorer(3, 0)),
    ("mlp1", lambda: MLPScorer(4, 1)),
    ("mlp3", lambda: MLPScorer(8, 3)),
    ("neumf0", lambda: NeuMFScorer(3, 2, 0)),
    ("neumf2", lambda: NeuMFScorer(3, 4, 2)),
]


@pytest.mark.parametrize("name,make", SCORER_CASES, ids=[c[0] for c in SCORER_CASES])
def test_forward_and_score_all_match_dense_reference(name, make):
    sc = _randomize(make(), seed=1)
    g = torch.Generator().manual_seed(2)
    u = torch.randn(5, sc.dim, generator=g, dtype=torch.float64)
    v = torch.randn(7, sc.dim, generator=g, dtype=torch.float64)
    ref = torch.tensor([[float(reference(sc, u[b], v[i])) for i in range(7)] for b in range(5)], dtype=torch.float64)
    full = sc.score_all(u, v)
    assert full.shape == (5, 7) and full.dtype == torch.float64
    torch.testing.assert_close(full, ref, rtol=1e-12, atol=1e-12)
    # score_all agrees with forward on all pairs, and forward on the diagonal pairs
    pairs = sc(u.repeat_interleave(7, 0), v.repeat(5, 1)).view(5, 7)
    torch.testing.assert_close(pairs, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sc(u, v[:5]), ref.diagonal()[:5], rtol=1e-12, atol=1e-12)
    # score_all returns a new tensor the evaluator may overwrite in place
    full2 = sc.score_all(u, v)
    full2.fill_(0.0)
    torch.testing.assert_close(sc.score_all(u, v), ref, rtol=1e-12, atol=1e-12)


def test_hand_checked_values():
    gmf = GMFScorer(2).double()
    mlp = MLPScorer(1, 1).double()  # tower 2 -> 1
    with torch.no_grad():
        gmf.h.weight.copy_(torch.tensor([[1.0, 2.0]]))
        mlp.tower.layers[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        mlp.tower.layers[0].bias.copy_(torch.tensor([0.5]))
        mlp.h.weight.copy_(torch.tensor([[2.0]]))
    p, q = torch.tensor([[1.0, 3.0]], dtype=torch.float64), torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    assert gmf(p, q).item() == 1 * 1 * 2 + 2 * 3 * -1  # -4
    users = torch.tensor([[3.0], [0.0]], dtype=torch.float64)
    items = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    # relu(3 - 1 + .5) * 2 = 5, relu(3 - 2 + .5) * 2 = 3, relu(0 - 1 + .5) = 0, relu(-2 + .5) = 0
    torch.testing.assert_close(mlp.score_all(users, items), torch.tensor([[5.0, 3.0], [0.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(mlp(users, items), torch.tensor([5.0, 0.0], dtype=torch.float64))
    mlp0 = MLPScorer(1, 0).double()
    with torch.no_grad():
        mlp0.h.weight.copy_(torch.tensor([[2.0, -1.0]]))
    # MLP-0: 2 p - q, the same item ranking for every user
    torch.testing.assert_close(mlp0.score_all(users, items), torch.tensor([[5.0, 4.0], [-1.0, -2.0]], dtype=torch.float64))


def test_tower_sizes_and_factor_convention():
    assert MLPScorer(32, 3).tower.sizes == [64, 32, 16, 8] and MLPScorer(32, 3).factors == 8
    assert MLPScorer(4, 0).tower.sizes == [8] and MLPScorer(4, 0).factors == 8
    assert [mlp_embedding_dim(8, L) for L in range(5)] == [4, 8, 16, 32, 64]
    for f in (8, 16, 32, 64):
        for layers in range(5):
            assert MLPScorer(mlp_embedding_dim(f, layers), layers).factors == f
    assert NeuMFScorer(8, 32, 3).factors == 16 and NeuMFScorer(8, 32, 3).dim == 40
    with pytest.raises(ValueError, match="divisible"):
        MLPTower(6, 3)
    with pytest.raises(ValueError, match="even"):
        mlp_embedding_dim(7, 0)
    with pytest.raises(ValueError):
        GMFScorer(0)
    with pytest.raises(ValueError, match="width"):
        GMFScorer(4)(torch.randn(3, 5), torch.randn(3, 5))
    with pytest.raises(ValueError):
        NeuMFEncoder(NU, NI, gmf_dim=0)


def test_pair_cost_and_chunk_rows():
    assert GMFScorer(8).pair_cost == 1 and MLPScorer(8, 0).pair_cost == 1
    assert MLPScorer(32, 3).pair_cost == 32 + 16 + 8 + 1
    assert NeuMFScorer(8, 32, 3).pair_cost == 57 + 2
    item = torch.zeros(100, 4)
    assert _chunk_rows(100, item, None, 100 * 4 * 10) == 10
    assert _chunk_rows(100, item, None, 100 * 4 * 10, DotScorer()) == 10
    assert _chunk_rows(100, item, None, 100 * 4 * 57 * 3, MLPScorer(32, 3)) == 3
    assert _chunk_rows(100, item, 7, 1, MLPScorer(32, 3)) == 7


# ------------------------------------------------------------------ encoders


def test_encoders_forward_init_and_repr(data):
    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    torch.manual_seed(0)
    gmf, mlp, neu = GMFEncoder(nu, ni), MLPEncoder(nu, ni, dim=16), NeuMFEncoder(nu, ni, gmf_dim=4, mlp_dim=16)
    emb = neu(data)
    assert emb.user.shape == (nu, 20) and emb.item.shape == (ni, 20) and emb.aux_loss is None
    torch.testing.assert_close(emb.user[:, :4], neu.gmf_user_emb.weight)
    torch.testing.assert_close(emb.item[:, 4:], neu.mlp_item_emb.weight)
    users = torch.tensor([3, 0, 3])
    torch.testing.assert_close(neu(data, users=users).user, emb.user[users])
    assert gmf(data).user.shape == (nu, 8) and gmf(data, users=users).user.shape == (3, 8)
    assert mlp(data).item.shape == (ni, 16)
    for w in (gmf.user_emb.weight.detach(), mlp.item_emb.weight.detach(), neu.mlp_user_emb.weight.detach()):
        assert abs(float(w.std()) - 0.01) < 0.002 and abs(float(w.mean())) < 0.002  # paper: N(0, 0.01^2)
    assert repr(gmf).startswith("GMFEncoder(\n") and f"{nu}, {ni}, dim=8" in repr(gmf)
    assert f"{nu}, {ni}, dim=16" in repr(mlp)
    assert f"{nu}, {ni}, gmf_dim=4, mlp_dim=16" in repr(neu)
    assert "dim=8" in repr(GMFScorer(8))
    r = repr(MLPScorer(32, 3))
    assert "dim=32, num_layers=3, factors=8" in r and "sizes=[64, 32, 16, 8]" in r
    assert "gmf_dim=8, mlp_dim=32, num_layers=3" in repr(NeuMFScorer(8, 32, 3))
    with pytest.raises(ValueError, match="built for"):
        GMFEncoder(nu + 1, ni)(data)


@pytest.mark.parametrize("model", ["gmf", "mlp", "neumf"])
def test_gradients_reach_every_parameter(data, model):
    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    torch.manual_seed(0)
    enc, sc = build_model(model, nu, ni, {"num_layers": 2} if model != "gmf" else {})
    emb = enc(data)
    users, items = torch.arange(0, 60), torch.arange(0, 120, 2)
    labels = (torch.arange(60) % 2).float()
    loss = F.binary_cross_entropy_with_logits(sc(emb.user[users], emb.item[items]), labels)
    loss = loss + sc.score_all(emb.user[:5], emb.item).logsumexp(1).mean()  # score_all is differentiable too
    loss.backward()
    for name, p in list(enc.named_parameters()) + list(sc.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ------------------------------------------------------------------ pretraining fusion


def _pretrained_parts(layers=2):
    torch.manual_seed(0)
    ge, gs = GMFEncoder(NU, NI, dim=3), GMFScorer(3)
    me, ms = MLPEncoder(NU, NI, dim=4), MLPScorer(4, layers)
    for i, m in enumerate((ge, gs, me, ms)):
        _randomize(m, seed=10 + i)
    return ge, gs, me, ms


@pytest.mark.parametrize("alpha", [0.5, 0.3, 1.0])
@pytest.mark.parametrize("layers", [0, 2])
def test_neumf_from_pretrained_is_the_alpha_mixture(alpha, layers):
    ge, gs, me, ms = _pretrained_parts(layers)
    ne, ns = neumf_from_pretrained(ge, gs, me, ms, alpha=alpha)
    assert isinstance(ne, NeuMFEncoder) and isinstance(ns, NeuMFScorer)
    assert ne.gmf_user_emb.weight.dtype == ns.h.weight.dtype == torch.float64  # on the parts' dtype
    user = torch.cat([ge.user_emb.weight, me.user_emb.weight], 1).detach()
    item = torch.cat([ge.item_emb.weight, me.item_emb.weight], 1).detach()
    s_gmf = gs.score_all(ge.user_emb.weight, ge.item_emb.weight).detach()
    s_mlp = ms.score_all(me.user_emb.weight, me.item_emb.weight).detach()
    want = alpha * s_gmf + (1 - alpha) * s_mlp
    with torch.no_grad():
        torch.testing.assert_close(ns.score_all(user, item), want, rtol=1e-12, atol=1e-12)
        uu, ii = torch.arange(NU).repeat_interleave(NI), torch.arange(NI).repeat(NU)
        torch.testing.assert_close(ns(user[uu], item[ii]).view(NU, NI), want, rtol=1e-12, atol=1e-12)
        # the encoder's representations are the copied tables
        torch.testing.assert_close(ne.gmf_user_emb.weight, ge.user_emb.weight, rtol=0, atol=0)
        torch.testing.assert_close(ne.mlp_item_emb.weight, me.item_emb.weight, rtol=0, atol=0)
        # copies, not shared storage
        ge.user_emb.weight.add_(1.0)
        ms.h.weight.mul_(2.0)
        torch.testing.assert_close(ns.score_all(user, item), want, rtol=1e-12, atol=1e-12)


def test_neumf_from_pretrained_hand_checked():
    ge, gs, me, ms = GMFEncoder(1, 1, dim=1), GMFScorer(1), MLPEncoder(1, 1, dim=1), MLPScorer(1, 1)
    with torch.no_grad():
        ge.user_emb.weight.fill_(2.0); ge.item_emb.weight.fill_(3.0); gs.h.weight.fill_(1.0)  # s_gmf = 6
        me.user_emb.weight.fill_(1.0); me.item_emb.weight.fill_(1.0)
        ms.tower.layers[0].weight.fill_(1.0); ms.tower.layers[0].bias.fill_(0.0); ms.h.weight.fill_(5.0)  # s_mlp = 10
    ne, ns = neumf_from_pretrained(ge, gs, me, ms, alpha=0.25)
    with torch.no_grad():
        emb = ne.gmf_user_emb.weight, ne.mlp_user_emb.weight
        user = torch.cat(emb, 1)
        item = torch.cat([ne.gmf_item_emb.weight, ne.mlp_item_emb.weight], 1)
        assert ns(user, item).item() == pytest.approx(0.25 * 6 + 0.75 * 10)  # 9.0
        assert ns.h.weight.tolist() == [[0.25, 3.75]]


def test_neumf_from_pretrained_rejects_mismatches():
    ge, gs, me, ms = _pretrained_parts()
    with pytest.raises(ValueError, match="alpha"):
        neumf_from_pretrained(ge, gs, me, ms, alpha=1.5)
    with pytest.raises(ValueError, match="built for"):
        neumf_from_pretrained(ge, gs, MLPEncoder(NU + 1, NI, dim=4), ms)
    with pytest.raises(ValueError, match="widths"):
        neumf_from_pretrained(ge, GMFScorer(5), me, ms)


def test_state_dict_round_trip_gives_identical_scores(data):
    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    for name in ("gmf", "mlp", "neumf"):
        torch.manual_seed(1)
        enc, sc = build_model(name, nu, ni, {})
        _randomize(sc, seed=3, std=0.3).float()
        torch.manual_seed(2)
        enc2, sc2 = build_model(name, nu, ni, {})
        enc2.load_state_dict(enc.state_dict())
        sc2.load_state_dict(sc.state_dict())
        with torch.no_grad():
            e, e2 = enc(data), enc2(data)
            assert torch.equal(sc.score_all(e.user, e.item), sc2.score_all(e2.user, e2.item)), name
            assert torch.equal(sc(e.user[:7], e.item[:7]), sc2(e2.user[:7], e2.item[:7])), name


# ------------------------------------------------------------------ registry and evaluator


def test_registry_builds_ncf_models_with_their_scorers():
    enc, sc = build_model("gmf", NU, NI, {"dim": 16})
    assert isinstance(enc, GMFEncoder) and isinstance(sc, GMFScorer) and enc.dim == sc.dim == 16
    enc, sc = build_model("mlp", NU, NI, {"dim": 16, "num_layers": 2, "init_std": 0.1})
    assert isinstance(sc, MLPScorer) and enc.dim == sc.dim == 16 and sc.factors == 8 and enc.init_std == 0.1
    enc, sc = build_model("neumf", NU, NI, {"gmf_dim": 4, "mlp_dim": 8, "num_layers": 1})
    assert (enc.gmf_dim, enc.mlp_dim, sc.gmf_dim, sc.mlp_dim, sc.num_layers) == (4, 8, 4, 8, 1)
    enc, sc = build_model("neumf", NU, NI, {})  # defaults agree between encoder and scorer
    assert enc.dim == sc.dim
    assert isinstance(build_model("mf", NU, NI, {"dim": 4})[1], DotScorer)
    with pytest.raises(ValueError, match=r"model_args for 'mlp': unknown key\(s\) \['layers'\]"):
        build_model("mlp", NU, NI, {"layers": 3})
    with pytest.raises(ValueError, match="num_layers"):  # valid keys listed include the scorer's
        build_model("neumf", NU, NI, {"dimm": 3})
    with pytest.raises(ValueError, match="unknown key"):
        build_model("mf", NU, NI, {"num_layers": 3})
    assert {n for n, s in MODELS.items() if s.scorer is not None} == {"gmf", "mlp", "neumf"}
    for name in ("gmf", "mlp", "neumf"):
        args = default_train_args(name)
        assert args["loss"] == "bce" and args["num_negatives"] == 4
        TrainConfig.from_flat(**args)  # valid train settings
        train, objective = default_sections(name)
        train["lr"] = 99.0
        assert MODELS[name].train["lr"] == 1e-3 and objective["name"] == "bce"  # a copy
    assert default_train_args("mf") == {}
    with pytest.raises(ValueError, match="unknown model"):
        default_train_args("nope")


def test_full_ranking_with_mlp_scorer_and_small_chunks(data):
    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    torch.manual_seed(0)
    enc, sc = build_model("neumf", nu, ni, {"gmf_dim": 4, "mlp_dim": 8, "num_layers": 2})
    _randomize(enc, 5, std=0.5).float()
    _randomize(sc, 6, std=0.5).float()
    with torch.no_grad():
        emb = enc(data)
        by_bytes = full_ranking(emb.user, emb.item, sc, data, ks=(10,), max_chunk_bytes=ni * 4 * sc.pair_cost * 7)
        by_rows = full_ranking(emb.user, emb.item, sc, data, ks=(10,), chunk_size=1000)
    assert by_bytes == pytest.approx(by_rows)


# ------------------------------------------------------------------ end to end


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight the other jobs of a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("model,args", [("gmf", {"dim": 8}), ("mlp", {"dim": 16, "num_layers": 2}),
                                        ("neumf", {"gmf_dim": 8, "mlp_dim": 16, "num_layers": 2})])
def test_tiny_fit_beats_popularity(data, one_thread, model, args):
    nu, ni = data["user"].num_nodes, data["item"].num_nodes
    pop = Trainer(TrainConfig.from_flat(epochs=0)).fit(PopularityEncoder(nu, ni), data).test["recall@20"]
    # eval_every=0: the trainer's best-epoch restore covers the encoder only, so the last
    # epoch is used for encoder and scorer alike
    cfg = TrainConfig.from_flat(**{**default_train_args(model), "epochs": 6, "lr": 0.01, "seed": 0, "eval_every": 0,
                         "patience": 0})
    assert cfg.loss == "bce" and cfg.objective.num_negatives == 4 and cfg.batch_size == 256
    torch.manual_seed(0)
    enc, sc = build_model(model, nu, ni, args)
    res = Trainer(cfg).fit(enc, data, sc)
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert res.test["recall@20"] > pop + 0.1, (res.test["recall@20"], pop)
