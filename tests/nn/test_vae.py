"""Mult-VAE / Mult-DAE encoders, the multinomial objective and fold-in of new users."""
import io
import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from contracts import KillAt, Killed
from graphcf.data.build import user_item_csr
from graphcf.data.synthetic import synthetic_dataset
from graphcf.evaluate import topk_items
from graphcf.losses import multinomial_nll
from graphcf.models import MODELS, build_model, default_train_args
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.encoders.vae import MultDAEEncoder, MultVAEEncoder
from graphcf.nn.scorers import DotScorer
from graphcf.objectives import MultinomialObjective
from graphcf.train import Trainer, TrainConfig
from graphcf.typing import INTERACTS, REV_INTERACTS, UserItemEmbeddings


@pytest.fixture(scope="module")
def small():
    d, _ = synthetic_dataset(num_users=60, num_items=40, num_clusters=3, mean_degree=8, seed=0)
    return d


def _vae(d, init_seed=0, **kw):
    """``seed`` in ``kw`` goes to the encoder (its own generator); ``init_seed`` seeds the weights."""
    torch.manual_seed(init_seed)
    kw = {"hidden_dims": (16, 12), "latent_dim": 6, **kw}
    return MultVAEEncoder(d["user"].num_nodes, d["item"].num_nodes, **kw)


def _dae(d, init_seed=0, **kw):
    """``seed`` in ``kw`` goes to the encoder (its own generator); ``init_seed`` seeds the weights."""
    torch.manual_seed(init_seed)
    kw = {"hidden_dims": (16, 12), "latent_dim": 6, **kw}
    return MultDAEEncoder(d["user"].num_nodes, d["item"].num_nodes, **kw)


def _dense_rows(d):
    ei = d[INTERACTS].edge_index
    x = np.zeros((d["user"].num_nodes, d["item"].num_nodes))
    x[ei[0].numpy(), ei[1].numpy()] = 1.0
    return x


def _reference(enc, x, vae):
    """Hand-written float64 numpy forward pass (eval mode) with the module's own weights.

    Returns ``(h, logits, mu, logvar)`` (``mu``/``logvar`` ``None`` for the DAE).
    """
    p = {k: v.detach().double().numpy() for k, v in enc.state_dict().items() if not k.endswith("_extra_state")}
    norm = np.sqrt((x ** 2).sum(1, keepdims=True))
    a = (x / np.maximum(norm, 1e-12)) @ p["in_weight"] + p["in_bias"]
    n_enc = len(enc.encoder_layers)
    if n_enc or not vae:
        a = np.tanh(a)
    for k in range(n_enc):
        a = a @ p[f"encoder_layers.{k}.weight"].T + p[f"encoder_layers.{k}.bias"]
        if k < n_enc - 1 or not vae:
            a = np.tanh(a)
    mu = logvar = None
    if vae:
        mu, logvar = a[:, : enc.latent_dim], a[:, enc.latent_dim :]
        a = mu
    for k in range(len(enc.decoder_layers)):
        a = np.tanh(a @ p[f"decoder_layers.{k}.weight"].T + p[f"decoder_layers.{k}.bias"])
    return a, a @ p["out.weight"].T + p["out.bias"], mu, logvar


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# --------------------------------------------------------------------------- math


@pytest.mark.parametrize("vae", [True, False])
def test_forward_matches_float64_reference(small, vae):
    enc = (_vae if vae else _dae)(small).eval()
    users = torch.tensor([5, 0, 17, 5, 59])
    emb = enc(small, users=users)
    h, logits, mu, logvar = _reference(enc, _dense_rows(small)[users.numpy()], vae)
    assert emb.user.shape == (5, 17) and emb.item.shape == (40, 17)
    _close(emb.user[:, :-1].detach(), h)
    assert torch.equal(emb.user[:, -1], torch.ones(5))
    _close(emb.item.detach(), np.c_[enc.out.weight.detach().numpy(), enc.out.bias.detach().numpy()])
    _close(DotScorer().score_all(emb.user, emb.item).detach(), logits)
    if vae:
        kl = 0.5 * (np.exp(logvar) + mu ** 2 - 1.0 - logvar).sum(1).mean()
        _close(emb.aux_loss.detach(), kl)
    else:
        assert emb.aux_loss is None


def test_dot_scorer_gives_exactly_the_decoder_logits(small):
    enc = _vae(small).double().eval()
    emb = enc(small, users=torch.arange(20))
    h = emb.user[:, :-1]
    torch.testing.assert_close(DotScorer().score_all(emb.user, emb.item), F.linear(h, enc.out.weight, enc.out.bias),
                               rtol=0, atol=1e-12)
    pairs = DotScorer()(emb.user[:3], emb.item[[4, 7, 9]])
    torch.testing.assert_close(pairs, F.linear(h, enc.out.weight, enc.out.bias)[[0, 1, 2], [4, 7, 9]], rtol=0, atol=1e-12)


def test_kl_matches_closed_form_and_reparameterisation_samples_q(small):
    enc = _vae(small, hidden_dims=(), dropout=0.0, seed=1).double().eval()
    _, _, mu, logvar = _reference(enc, _dense_rows(small)[:8], vae=True)
    q = torch.distributions.Normal(torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    closed = torch.distributions.kl_divergence(q, p).sum(-1).mean()
    torch.testing.assert_close(enc(small, users=torch.arange(8)).aux_loss, closed.double())
    # hidden_dims=(): the user representation is [z | 1]; in training mode z ~ q(z|x)
    enc.train()
    z = enc(small, users=torch.zeros(20000, dtype=torch.long)).user[:, :-1].detach()
    torch.testing.assert_close(z.mean(0), torch.from_numpy(mu[0]), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.from_numpy(np.exp(0.5 * logvar[0])), atol=0.05, rtol=0.05)
    # Monte-Carlo KL with the sampled z agrees with the closed form
    q0 = torch.distributions.Normal(torch.from_numpy(mu[0]), torch.from_numpy(np.exp(0.5 * logvar[0])))
    mc = (q0.log_prob(z) - p.log_prob(z)).sum(1).mean()
    assert abs(float(mc) - float(torch.distributions.kl_divergence(q0, p).sum())) < 0.1


def test_dae_weight_penalty(small):
    enc = _dae(small, lam=0.01)
    aux = enc(small, users=torch.arange(3)).aux_loss
    expected = 0.01 * sum(float((w.detach().double() ** 2).sum()) for w in
                          [enc.in_weight, *(m.weight for m in enc.encoder_layers),
                           *(m.weight for m in enc.decoder_layers), enc.out.weight])
    assert float(aux.detach()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="lam"):
        _dae(small, lam=-1.0)


def test_multinomial_nll_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 9)) * 3
    target = (rng.random((5, 9)) < 0.3) * rng.integers(1, 3, size=(5, 9))
    shifted = logits - logits.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    ref = -(logp * target).sum(1).mean()
    got = multinomial_nll(torch.from_numpy(logits), torch.from_numpy(target).double())
    assert float(got) == pytest.approx(ref, rel=1e-12)
    # the sparse target (the trainer's fast path) gives the same value and gradient
    lt = torch.from_numpy(logits).requires_grad_()
    multinomial_nll(lt, torch.from_numpy(target).double()).backward()
    dense_grad = lt.grad.clone()
    lt.grad = None
    sparse = multinomial_nll(lt, torch.from_numpy(target).double().to_sparse_csr())
    assert float(sparse) == pytest.approx(ref, rel=1e-12)
    sparse.backward()
    torch.testing.assert_close(lt.grad, dense_grad)
    with pytest.raises(ValueError, match="shape"):
        multinomial_nll(lt, torch.zeros(5, 8))


# --------------------------------------------------------------------------- interface


@pytest.mark.parametrize("make", [_vae, _dae])
def test_chunked_all_users_equals_batched(small, make):
    enc = make(small, chunk_size=7).eval()
    full = enc(small)
    assert full.user.shape == (60, 17)
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    part = enc(small, users=perm[:25])
    torch.testing.assert_close(full.user[perm[:25]], part.user, rtol=1e-6, atol=1e-6)
    one = make(small, chunk_size=4096).eval()
    torch.testing.assert_close(one(small).user, full.user, rtol=1e-6, atol=1e-6)
    if full.aux_loss is not None:  # mean KL over all users either way
        torch.testing.assert_close(full.aux_loss, enc(small, users=torch.arange(60)).aux_loss)


@pytest.mark.parametrize("make,kw", [(_vae, {}), (_dae, {"lam": 1e-3}), (_vae, {"hidden_dims": ()})])
def test_gradient_reaches_every_parameter(small, make, kw):
    enc = make(small, seed=0, **kw).train()
    obj = MultinomialObjective(anneal_steps=10, anneal_cap=0.5)
    obj.setup(small)
    obj.step = 5
    obj.loss(enc, DotScorer(), small, (torch.arange(30),)).backward()
    for name, prm in enc.named_parameters():
        assert prm.grad is not None and prm.grad.abs().sum() > 0, name


def test_dropout_and_sampling_only_in_training_mode(small):
    for make in (_vae, _dae):
        enc = make(small, seed=0)
        users = torch.arange(10)
        enc.eval()
        a, b = enc(small, users=users).user, enc(small, users=users).user
        assert torch.equal(a, b)
        enc.train()
        c, d = enc(small, users=users).user, enc(small, users=users).user
        assert not torch.equal(c, d) and not torch.equal(a, c)
    # the DAE without dropout has no other randomness: train mode == eval mode
    dae = _dae(small, dropout=0.0)
    torch.testing.assert_close(dae.train()(small).user, dae.eval()(small).user)
    # the same seed gives the same noise; torch's default RNG is untouched by a seeded encoder
    e1, e2 = _vae(small, seed=3).train(), _vae(small, seed=3).train()
    torch.manual_seed(0)
    r0 = torch.rand(3)
    torch.manual_seed(0)
    u1 = e1(small, users=users).user
    assert torch.equal(torch.rand(3), r0)
    assert torch.equal(u1, e2(small, users=users).user)
    with pytest.raises(ValueError, match="dropout"):
        _vae(small, dropout=1.0)


def test_state_dict_round_trip(small):
    enc = _vae(small, seed=4)
    opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
    obj = MultinomialObjective(anneal_steps=10)
    obj.setup(small)
    for _ in range(3):
        opt.zero_grad()
        obj.loss(enc.train(), DotScorer(), small, (torch.arange(20),)).backward()
        opt.step()
    buf = io.BytesIO()
    torch.save(enc.state_dict(), buf)
    buf.seek(0)
    other = _vae(small, init_seed=1, seed=99)  # other init and other seed: everything comes from the state dict
    other.load_state_dict(torch.load(buf))
    assert not any("csr" in k for k in other.state_dict())
    s1 = DotScorer().score_all(*enc.eval()(small)[:2])
    s2 = DotScorer().score_all(*other.eval()(small)[:2])
    assert torch.equal(s1, s2)
    # the generator state travels too: the same training-mode noise afterwards
    assert torch.equal(enc.train()(small, users=torch.arange(9)).user, other.train()(small, users=torch.arange(9)).user)


def test_graph_is_a_forward_input_with_cached_rows(small):
    enc = _vae(small).eval()
    a = enc(small).user
    cached = enc._csr
    enc(small, users=torch.arange(4))
    assert enc._csr is cached  # not rebuilt for the same edge_index
    other = small.clone()
    ei = other[INTERACTS].edge_index
    keep = ei[0] != 3
    other[INTERACTS].edge_index = ei[:, keep]
    other[REV_INTERACTS].edge_index = ei[:, keep].flip(0)
    b = enc(other).user
    assert enc._csr is not cached
    assert not torch.equal(a[3], b[3]) and torch.equal(a[4], b[4])
    torch.testing.assert_close(b[3], enc.encode_history(torch.zeros(1, 40))[0])  # empty row
    with pytest.raises(ValueError, match="built for"):
        MultVAEEncoder(61, 40, hidden_dims=(8,), latent_dim=4)(small)


def test_encode_history_equals_forward_for_training_users(small):
    enc = _vae(small, chunk_size=5).eval()
    x = _dense_rows(small)
    users = torch.tensor([0, 9, 33, 42, 51, 2, 7])
    ref = enc(small, users=users).user
    rows = x[users.numpy()]
    for hist in (torch.from_numpy(rows).float(), torch.from_numpy(rows).to_sparse_csr(),
                 torch.from_numpy(rows).to_sparse(), sp.csr_matrix(rows), rows):
        torch.testing.assert_close(enc.encode_history(hist), ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"\[B, 40\]"):
        enc.encode_history(torch.zeros(2, 39))
    h, logits, _, _ = _reference(enc, np.vstack([rows, np.zeros(40)]), vae=True)
    _close(DotScorer().score_all(enc.encode_history(np.vstack([rows, np.zeros(40)])), enc.item_embeddings()).detach(),
           logits)


# --------------------------------------------------------------------------- objective & registry


class _Fixed(Encoder):
    """Fixed logits with ``aux == {"kl": 1}`` so the objective's loss minus the NLL is beta."""

    def __init__(self, nu, ni):
        super().__init__(nu, ni)
        self.w = torch.nn.Parameter(torch.randn(ni, 3))

    def forward(self, data, users=None):
        n = self.num_users if users is None else len(users)
        return UserItemEmbeddings(torch.ones(n, 3), self.w, {"kl": torch.ones(())})


def test_multinomial_objective_targets_and_annealing(small):
    obj = MultinomialObjective(anneal_steps=10, anneal_cap=0.3)
    obj.setup(small)
    enc, scorer = _Fixed(60, 40), DotScorer()
    users = torch.tensor([7, 1, 7, 30])
    target = obj._target(users, torch.zeros(1, dtype=torch.float64))
    np.testing.assert_array_equal(target.numpy(), _dense_rows(small)[users.numpy()])
    assert target.dtype == torch.float64
    betas = []
    for _ in range(6):
        logits = scorer.score_all(torch.ones(4, 3), enc.w)
        loss = obj.loss(enc, scorer, small, (users,))
        betas.append(float((loss - multinomial_nll(logits, target.float())).detach()))
    assert betas == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3, 0.3], abs=1e-5)
    enc.eval()
    obj.loss(enc, scorer, small, (users,))
    assert obj.step == 6  # evaluation-mode losses do not advance the schedule
    fresh = MultinomialObjective(anneal_steps=10, anneal_cap=0.3)
    fresh.load_state_dict(obj.state_dict())
    assert fresh.beta == pytest.approx(0.3)


def test_registry_and_default_train_settings():
    assert MODELS["multvae"].cls is MultVAEEncoder and MODELS["multdae"].cls is MultDAEEncoder
    enc, scorer = build_model("multdae", 10, 20, {"hidden_dims": [8], "latent_dim": 4, "lam": 1e-4})
    assert isinstance(enc, MultDAEEncoder) and type(scorer) is DotScorer and enc.hidden_dims == (8,)
    for name in ("multvae", "multdae"):
        cfg = TrainConfig.from_flat(**default_train_args(name))
        assert cfg.loss == "multinomial" and cfg.batch_size == 500 and cfg.metric == "ndcg@100"
    assert MODELS["multvae"].objective["anneal_cap"] == 0.2
    with pytest.raises(ValueError, match="unknown key"):
        build_model("multvae", 10, 20, {"dim": 8})


# --------------------------------------------------------------------------- training




RESUME_CFG = dict(loss="multinomial", epochs=4, batch_size=64, lr=3e-3, seed=3, patience=0, ks=(10, 20),
                  anneal_steps=50, anneal_cap=0.2)


def test_resume_after_kill_keeps_beta_schedule(tmp_path):
    d, _ = synthetic_dataset(num_users=200, num_items=120, num_clusters=4, mean_degree=15, seed=0)
    cfg = TrainConfig.from_flat(**RESUME_CFG)
    batches_per_epoch = -(-int(d[INTERACTS].edge_index[0].unique().numel()) // cfg.batch_size)
    total = cfg.epochs * batches_per_epoch
    assert 0.2 * cfg.objective.anneal_steps < total  # the cap is reached during the run ...
    assert 0.2 * cfg.objective.anneal_steps > 2 * batches_per_epoch  # ... but only after the kill

    full = Trainer(cfg).fit(_vae(d, hidden_dims=(32,), latent_dim=8, seed=0), d, out_dir=tmp_path / "a")
    with pytest.raises(Killed):
        KillAt(cfg, at=3).fit(_vae(d, hidden_dims=(32,), latent_dim=8, seed=0), d, out_dir=tmp_path / "b")
    ck = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert ck["epoch"] == 2 and ck["objective"]["step"] == 2 * batches_per_epoch
    resumed = Trainer(cfg).fit(_vae(d, init_seed=1, seed=7, hidden_dims=(32,), latent_dim=8), d, out_dir=tmp_path / "b")
    assert resumed.test == full.test and resumed.val == full.val
    losses = [[json.loads(x)["loss"] for x in (tmp_path / s / "metrics.jsonl").read_text().splitlines()] for s in "ab"]
    assert losses[0] == losses[1] and len(losses[0]) == 4
    ck = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert ck["objective"]["step"] == total
    obj = cfg.make_objective()
    obj.load_state_dict(ck["objective"])
    assert obj.beta == pytest.approx(0.2)


def test_fold_in_new_users_beats_popularity():
    d, _ = synthetic_dataset(num_users=700, num_items=300, num_clusters=6, mean_degree=20, seed=1)
    nu, ni = 700, 300
    ei = d[INTERACTS].edge_index
    new_users = torch.arange(0, nu, 5)  # removed from the training graph
    is_new = torch.zeros(nu, dtype=torch.bool)
    is_new[new_users] = True
    train = d.clone()
    train[INTERACTS].edge_index = ei[:, ~is_new[ei[0]]]
    train[REV_INTERACTS].edge_index = train[INTERACTS].edge_index.flip(0)

    enc = MultVAEEncoder(nu, ni, hidden_dims=(64,), latent_dim=32, seed=0)
    cfg = TrainConfig.from_flat(loss="multinomial", epochs=25, batch_size=100, lr=3e-3, eval_every=0, patience=0,
                      anneal_steps=100, anneal_cap=0.2, seed=0)
    Trainer(cfg).fit(enc, train)
    enc.eval()

    hist = user_item_csr(ei, nu, ni)  # the new users' own (original) training rows
    hist_crow, hist_col = hist.crow_indices(), hist.col_indices()
    rows = [hist_col[hist_crow[u]:hist_crow[u + 1]] for u in new_users.tolist()]
    history = torch.zeros(len(rows), ni)
    for r, cols in enumerate(rows):
        history[r, cols] = 1.0
    history = history.to_sparse_csr()
    held = torch.cat([d[INTERACTS]["val_edge_label_index"], d[INTERACTS]["test_edge_label_index"]], 1)
    targets = [set(held[1, held[0] == u].tolist()) for u in new_users.tolist()]

    def recall(user_emb, item_emb):
        top = topk_items(user_emb, item_emb, DotScorer(), 20, exclude=history).indices.tolist()
        vals = [len(set(t) & tg) / len(tg) for t, tg in zip(top, targets) if tg]
        return sum(vals) / len(vals)

    with torch.no_grad():
        r_vae = recall(enc.encode_history(history), enc.item_embeddings())
        counts = torch.bincount(train[INTERACTS].edge_index[1], minlength=ni).float().unsqueeze(1)
        r_pop = recall(torch.ones(len(rows), 1), counts)
        r_nohist = recall(enc(train, users=new_users).user, enc.item_embeddings())  # empty training rows
    assert r_vae >= 1.5 * r_pop, (r_vae, r_pop)
    assert r_vae > r_nohist + 0.1, (r_vae, r_nohist)
