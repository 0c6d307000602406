"""EASE (Steck 2019) against a dense numpy reference, its memory refusal, and EASE through the CLI."""
import json
import logging

import numpy as np
import pytest
import torch
import yaml

from graphcf.cli import main
from graphcf.data.build import train_edge_index
from graphcf.models import EASE, make_model
from graphcf.models.ease import spd_inverse_
from graphcf.train import Trainer, TrainConfig

SMALL = {"dataset": "synthetic", "synthetic": {"num_users": 150, "num_items": 90, "num_clusters": 4}}


def _data():
    from graphcf.data.source import DataConfig, load_data

    return load_data(DataConfig(**SMALL))[0]


def _numpy_ease(x: np.ndarray, lam: float) -> np.ndarray:
    """Steck's closed form, written out as in the paper's listing (float64)."""
    g = x.T @ x + lam * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = p / (-np.diag(p))
    np.fill_diagonal(b, 0.0)
    return b


def _dense_x(data):
    ei = train_edge_index(data).numpy()
    x = np.zeros((int(data["user"].num_nodes), int(data["item"].num_nodes)))
    x[ei[0], ei[1]] = 1.0
    return x


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-9), ("float32", 2e-4)])
@pytest.mark.parametrize("lam", [1.0, 50.0])
@pytest.mark.parametrize("inverse", ["lapack", "blocked"])
def test_ease_equals_the_dense_numpy_formula(dtype, tol, lam, inverse):
    data = _data()
    x = _dense_x(data)
    ref = _numpy_ease(x, lam)
    model = EASE(*x.shape, l2=lam, dtype=dtype, inverse=inverse, block=16)  # 90 items: 6 blocks, a ragged last
    model.fit_closed_form(data)
    assert model.B.is_contiguous()  # row-major: scoring reads rows of B
    b = model.B.double().numpy()
    np.testing.assert_allclose(b, ref, atol=tol * np.abs(ref).max(), rtol=0)
    assert np.all(np.diag(b) == 0)
    users = torch.tensor([0, 5, 17, 149])
    np.testing.assert_allclose(model.score(data, users).double().numpy(), (x @ ref)[users.numpy()],
                               atol=max(tol * 50, 1e-6), rtol=0)  # scores come out in float32


def test_ease_gram_matches_dense():
    data = _data()
    x = _dense_x(data)
    model = EASE(*x.shape, dtype="float64")
    g = model.gram(model.training_rows(data)).numpy()
    np.testing.assert_array_equal(g, x.T @ x)


@pytest.mark.parametrize("n,block", [(1, 4), (7, 3), (64, 64), (130, 32), (97, 200)])
def test_blocked_inverse_in_place_equals_numpy(n, block):
    gen = torch.Generator().manual_seed(n)
    f = torch.randn(n, n + 3, generator=gen, dtype=torch.float64)
    a = f @ f.T + 0.1 * torch.eye(n, dtype=torch.float64)
    ref = np.linalg.inv(a.numpy())
    ptr = a.data_ptr()
    out = spd_inverse_(a, block)
    assert out.data_ptr() == ptr  # the matrix's own memory
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())
    with pytest.raises(torch.linalg.LinAlgError):
        spd_inverse_(-torch.eye(5, dtype=torch.float64), 2)


def test_ease_picks_the_inverse_by_memory():
    ease = EASE(10, 1000)
    one = 1000 * 1000 * 4
    assert ease.choose_inverse(torch.device("cpu"), limit=10 * one) == "lapack"
    assert ease.choose_inverse(torch.device("cpu"), limit=2 * one) == "blocked"
    assert EASE(10, 1000, inverse="lapack").choose_inverse(torch.device("cpu"), limit=1) == "lapack"


def test_ease_topk_never_returns_seen_items_and_ranks_by_x_b():
    data = _data()
    x = _dense_x(data)
    model = EASE(*x.shape, l2=10.0, dtype="float64")
    model.fit_closed_form(data)
    scores = x @ _numpy_ease(x, 10.0)
    top = model.topk(data, torch.arange(20), k=5, chunk_size=6)
    for u in range(20):
        allowed = np.where(x[u] == 0)[0]
        want = allowed[np.argsort(-scores[u, allowed], kind="stable")][:5]
        np.testing.assert_allclose(scores[u, top.indices[u].numpy()], scores[u, want], rtol=1e-9)
        assert not set(top.indices[u].tolist()) & set(np.where(x[u] > 0)[0].tolist())


def test_ease_refuses_up_front_with_the_figure():
    data = _data()
    model = EASE(150, 90, max_memory_gb=1e-5)
    with pytest.raises(MemoryError, match=r"EASE on 90 items .* needs about 0\.0 GiB .* only 0\.0 GiB is allowed"):
        model.fit_closed_form(data)
    big = EASE(10, 300_000)  # 300k^2 float32 = 335 GiB: more than any machine here, even in place
    with pytest.raises(MemoryError, match=r"needs about 33\d\.\d GiB"):
        big.fit_closed_form(_bigger_universe())
    # Gowalla's catalogue: one (blocked, in place) or three (LAPACK) 40,981^2 float32 matrices, 6.257 GiB
    # each, plus three [40,981, 1,024] float32 panels (0.469 GiB)
    ease = EASE(10, 40_981)
    assert ease.fit_memory_bytes("blocked") / 2**30 == pytest.approx(6.257 + 0.469, abs=0.002)
    assert ease.fit_memory_bytes("lapack") / 2**30 == pytest.approx(3 * 6.257 + 0.469, abs=0.002)


def _bigger_universe():
    from graphcf.data import to_heterodata
    from graphcf.data.interactions import Interactions

    return to_heterodata({"train": Interactions(np.arange(10), np.arange(10), num_users=10, num_items=300_000)})


def test_ease_state_round_trip():
    data = _data()
    a = EASE(150, 90, l2=5.0)
    a.fit_closed_form(data)
    b = EASE(150, 90, l2=5.0)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a.score(data, torch.arange(10)), b.score(data, torch.arange(10)))
    with pytest.raises(RuntimeError, match="fit it first"):
        EASE(150, 90).score(data, torch.arange(3))


def test_ease_arguments_are_checked():
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASE(3, 4, l2=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        EASE(3, 4, dtype="half")
    with pytest.raises(ValueError, match="inverse must be"):
        EASE(3, 4, inverse="svd")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['lambda'\].*'l2'"):
        make_model("ease", 3, 4, {"lambda": 3})


def test_ease_fits_without_epochs_on_the_trainer_and_the_cli(tmp_path, capsys, caplog):
    data = _data()
    model = make_model("ease", 150, 90, {"l2": 20.0})
    res = Trainer(TrainConfig(ks=(10, 20))).fit(model, data, out_dir=tmp_path / "py")
    assert res.best_epoch == 0 and res.history[0]["epoch"] == 0 and res.history[0]["fit_s"] > 0
    assert res.val["num_users"] > 0 and 0 < res.test["recall@20"] <= 1
    cfg = tmp_path / "ease.yaml"
    cfg.write_text(yaml.safe_dump({"model": "ease", "model_args": {"l2": 20.0}, "data": SMALL,
                                   "train": {"ks": [10, 20]}}))
    out = tmp_path / "cli"
    with caplog.at_level(logging.WARNING):
        assert main(["train", "--config", str(cfg), "--out", str(out), "--epochs", "30", "--no-progress"]) == 0
    assert "training settings ['epochs'] are ignored" in caplog.text
    got = json.loads((out / "results.json").read_text())
    assert got["best_epoch"] == 0 and got["test"]["recall@20"] == pytest.approx(res.test["recall@20"])
    capsys.readouterr()
    assert main(["evaluate", str(out), "--ks", "20", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["recall@20"] == pytest.approx(got["test"]["recall@20"])
    assert main(["recommend", str(out), "--users", "0", "7", "--k", "5"]) == 0
    assert all(len(json.loads(line)["items"]) == 5 for line in capsys.readouterr().out.splitlines())
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "x"),
                 "--no-progress"] + []) == 0  # fits again from scratch (nothing to resume)


def test_ease_beats_popularity_on_planted_clusters():
    data = _data()
    ease = make_model("ease", 150, 90, {"l2": 20.0})
    pop = make_model("popularity", 150, 90, {})
    r_e = Trainer(TrainConfig(ks=(20,))).fit(ease, data).test["recall@20"]
    r_p = Trainer(TrainConfig(ks=(20,))).fit(pop, data).test["recall@20"]
    assert r_e > r_p + 0.05


def test_scores_split_b_into_row_blocks_beyond_32_bit_indexing(monkeypatch):
    """MKL's sparse x dense product indexes the dense side with 32 bits: past 2^31 elements (amazon-beauty's
    57,289^2 B) EASE multiplies by row blocks of B; shrunk here to blocks of 7 rows, same scores."""
    import graphcf.models.ease as ease_mod

    data = _data()
    model = EASE(150, 90, l2=10.0, dtype="float64")
    model.fit_closed_form(data)
    users = torch.arange(40)
    want = model.score(data, users)
    monkeypatch.setattr(ease_mod, "_MAX_DENSE_ELEMENTS", 7 * 90)
    torch.testing.assert_close(model.score(data, users), want)
