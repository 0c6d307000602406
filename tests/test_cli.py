"""The graphcf console script, run in-process."""
import json
import shutil

import pytest
import yaml

from graphcf.cli import _embeddings_from_run, main
from graphcf.data.idmap import IdMap

SMALL = {"dataset": "synthetic", "synthetic": {"num_users": 150, "num_items": 100, "num_clusters": 4}}


def _config(tmp_path, model="mf", **train):
    cfg = {"model": model, "model_args": {"dim": 8} if model == "mf" else {}, "data": SMALL,
           "train": {"epochs": 3, "batch_size": 256, "lr": 0.02, "ks": [5, 20], **train}}
    p = tmp_path / f"{model}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_train_evaluate_recommend(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path)), "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "mf" and 0 <= res["test"]["recall@20"] <= 1 and res["test"]["num_users"] > 0
    assert (out / "metrics.jsonl").read_text().count("\n") == 3
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["epochs"] == 3
    capsys.readouterr()
    assert main(["evaluate", str(out), "--ks", "20", "--no-progress"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["recall@20"] == pytest.approx(res["test"]["recall@20"])  # same model, same split
    assert main(["recommend", str(out), "--users", "0", "5", "--k", "3"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["user"] for x in lines] == ["0", "5"] and all(len(x["items"]) == 3 for x in lines)


def test_train_popularity_flags_override_config(tmp_path):
    out = tmp_path / "pop"
    assert main(["train", "--config", str(_config(tmp_path, "popularity")), "--out", str(out), "--seed", "4"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["model"] == "popularity" and res["best_epoch"] == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["seed"] == 4


def test_bad_config_keys_are_named(tmp_path, caplog):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"model": "mf", "model_args": {"dimension": 8}, "data": SMALL}))
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "x")]) == 2
    assert "unknown key(s) ['dimension']" in caplog.text and "dim" in caplog.text
    p.write_text(yaml.safe_dump({"model": "mf", "trainer": {}}))
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "x")]) == 2
    assert "unknown section(s) ['trainer']" in caplog.text
    assert main(["train", "--model", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "known models" in caplog.text


def test_datasets_list_and_describe(capsys):
    assert main(["datasets", "list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"gowalla", "ml-100k", "citeulike", "amazon-beauty", "synthetic"} <= set(names)
    assert main(["datasets", "describe", "gowalla"]) == 0
    assert "29858" in capsys.readouterr().out.replace(",", "")


def test_local_path_training(tmp_path):
    d = tmp_path / "lgcn"
    d.mkdir()
    (d / "train.txt").write_text("".join(f"{u} " + " ".join(str((u + k) % 12) for k in range(5)) + "\n" for u in range(10)))
    (d / "test.txt").write_text("".join(f"{u} {(u + 6) % 12}\n" for u in range(10)))
    out = tmp_path / "run"
    assert main(["train", "--model", "mf", "--path", str(d), "--format", "lightgcn", "--epochs", "2",
                 "--dim", "4", "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["test"]["num_users"] == 10


def test_plot_draws_png(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(_config(tmp_path)), "--out", str(out), "--no-progress"]) == 0
    assert main(["plot", str(out)]) == 0
    png = out / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["plot", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("model,args,loss", [
    ("neumf", {"gmf_dim": 4, "mlp_dim": 8, "num_layers": 1}, "bce"),
    ("multvae", {"hidden_dims": [16], "latent_dim": 4}, "multinomial"),
    ("multdae", {"hidden_dims": [16], "latent_dim": 4}, "multinomial"),
])
def test_train_zero_hop_models_with_their_default_objective(tmp_path, model, args, loss):
    cfg = {"model": model, "model_args": args, "data": SMALL, "train": {"epochs": 2, "ks": [20], "metric": "recall@20"}}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / model
    assert main(["train", "--config", str(p), "--out", str(out), "--no-progress"]) == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["objective"]["name"] == loss  # the model's default objective, merged under the user's keys
    assert resolved["train"]["epochs"] == 2
    res = json.loads((out / "results.json").read_text())
    assert res["test"]["num_users"] == 150 and 0 <= res["test"]["recall@20"] <= 1


def test_neumf_from_pretrained_runs(tmp_path, capsys):
    def run(model, args, extra=()):
        cfg = {"model": model, "model_args": args, "data": SMALL, "train": {"epochs": 2, "lr": 0.01}}
        p = tmp_path / f"{model}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        return main(["train", "--config", str(p), "--out", str(tmp_path / model), "--no-progress", *extra])

    assert run("gmf", {"dim": 4}) == 0 and run("mlp", {"dim": 8, "num_layers": 2}) == 0
    cfg = {"model": "neumf", "data": SMALL, "train": {"epochs": 1, "lr": 0.05}}
    p = tmp_path / "neumf.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "neumf"
    assert main(["train", "--config", str(p), "--out", str(out), "--pretrained", str(tmp_path / "gmf"),
                 str(tmp_path / "mlp"), "--no-progress"]) == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["optimizer"] == "sgd"
    assert resolved["model_args"] == {"gmf_dim": 4, "mlp_dim": 8, "num_layers": 2}
    capsys.readouterr()
    assert main(["evaluate", str(out), "--ks", "20"]) == 0  # the run directory rebuilds the fused model
    assert json.loads(capsys.readouterr().out)["num_users"] == 150
    assert main(["train", "--model", "mf", "--out", str(tmp_path / "x"), "--pretrained", str(tmp_path / "gmf"),
                 str(tmp_path / "mlp")]) == 2


def test_embeddings_from_a_trained_run(tmp_path):
    import torch

    def run(model, args, out, train=None, extra=()):
        cfg = {"model": model, "model_args": args, "data": SMALL, "train": {"epochs": 2, "lr": 0.01, **(train or {})}}
        p = tmp_path / f"{out}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        return main(["train", "--config", str(p), "--out", str(tmp_path / out), "--no-progress", *extra])

    assert run("mf", {"dim": 8}, "mf") == 0
    # lr 1e-12: one epoch of Adam moves each entry by ~1e-12, so the tables are MF's to float precision
    assert run("ngcf", {"dim": 8, "layer_dims": [8, 8]}, "ngcf", {"epochs": 1, "lr": 1e-12},
               ["--embeddings-from", str(tmp_path / "mf")]) == 0
    mf = torch.load(tmp_path / "mf" / "best.pt", weights_only=True)["model"]
    ngcf = torch.load(tmp_path / "ngcf" / "best.pt", weights_only=True)["model"]
    for name in ("encoder.user_emb.weight", "encoder.item_emb.weight"):
        assert torch.allclose(ngcf[name], mf[name], atol=1e-8)
    assert not torch.allclose(ngcf["encoder.user_emb.weight"], torch.zeros_like(mf["encoder.user_emb.weight"]))
    # a 16-dim NGCF cannot take 8-dim tables; a directory without a run is named in the error
    assert run("ngcf", {"dim": 16, "layer_dims": [16]}, "bad", extra=["--embeddings-from", str(tmp_path / "mf")]) == 2
    with pytest.raises(FileNotFoundError, match="nothing/best.pt"):
        _embeddings_from_run(None, None, tmp_path / "nothing")
    # a run on other ids (here: one more user) is refused before any row is copied
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "mf", other)
    IdMap.identity(151, 100).save(other / "idmap.json")
    with pytest.raises(ValueError, match="other user/item ids"):
        _embeddings_from_run(None, IdMap.identity(150, 100), other)


def test_config_sections_may_be_empty_but_not_scalars(tmp_path):
    from graphcf.config import load_config

    p = tmp_path / "c.yaml"
    p.write_text("model: mf\ndata:\ntrain:\n")
    assert load_config(p)["data"] == {} and load_config(p)["train"] == {}
    p.write_text("model: mf\ntrain: 5\n")
    with pytest.raises(ValueError, match="section 'train' must be a mapping"):
        load_config(p)
    p.write_text("model: [mf\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(p)


@pytest.mark.parametrize("model,sampling", [("lightgcn", "full"), ("lightgcn", "neighbor"), ("ngcf", "neighbor"),
                                            ("ngcf", "full")])
def test_train_graph_encoders_in_both_sampling_modes(tmp_path, model, sampling):
    cfg = {"model": model, "model_args": {"dim": 8}, "data": SMALL,
           "train": {"epochs": 2, "ks": [20], "lr": 0.01}}
    p = tmp_path / "g.yaml"
    p.write_text(yaml.safe_dump(cfg))
    out = tmp_path / f"{model}-{sampling}"
    argv = ["train", "--config", str(p), "--out", str(out), "--no-progress", "--sampling", sampling,
            "--num-neighbors", "5", "5", "5"]
    assert main(argv) == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["train"]["sampling"] == sampling and resolved["train"]["num_neighbors"] == [5, 5, 5]
    assert resolved["objective"]["name"] == "bpr"
    res = json.loads((out / "results.json").read_text())
    assert res["test"]["num_users"] == 150 and 0 < res["test"]["recall@20"] <= 1


def test_train_pinsage_negatives_and_curriculum_flags(tmp_path, monkeypatch):
    """`graphcf train --model pinsage --negatives uniform|shared|ppr --curriculum` resolves to the
    documented train settings and trains end to end."""
    cfg = _config(tmp_path, "pinsage", epochs=3, batch_size=128)
    runs = {
        "shared": (["--negatives", "shared"], {"sampler": "shared", "num_negatives": 500, "hard_negatives": 0}),
        "uniform": (["--negatives", "uniform"], {"sampler": "uniform", "num_negatives": 1, "hard_negatives": 0}),
        "ppr": (["--negatives", "ppr"], {"sampler": "shared", "hard_negatives": 1, "curriculum": False}),
        "cur": (["--negatives", "ppr", "--curriculum", "--hard-negatives", "2"],
                {"hard_negatives": 2, "curriculum": True, "loss": "margin"}),
    }
    for name, (flags, want) in runs.items():
        out = tmp_path / name
        assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress", *flags]) == 0, name
        resolved = yaml.safe_load((out / "config.yaml").read_text())
        got = {**resolved["train"], **resolved["objective"], "loss": resolved["objective"]["name"]}
        assert {k: got[k] for k in want} == want, name
        res = json.loads((out / "results.json").read_text())
        assert res["model"] == "pinsage" and 0 <= res["test"]["recall@20"] <= 1
    # hard negatives need a pairwise loss: a clear error, exit code 2
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "bad"), "--loss", "bce",
                 "--negatives", "ppr"]) == 2


def test_cli_choices_come_from_the_registries():
    """--loss, --negatives and the --model help are read from the registries when the parser is built, so
    an objective registered later (a new file plus a registry entry) is a CLI choice without a CLI edit."""
    from dataclasses import dataclass

    from graphcf.cli import build_parser
    from graphcf.models import MODELS
    from graphcf.objectives import NEGATIVE_SAMPLERS, OBJECTIVES, ObjectiveSettings, register_objective

    def actions():
        return {a.dest: a for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}

    assert tuple(actions()["loss"].choices) == tuple(OBJECTIVES)
    assert tuple(actions()["negatives"].choices) == tuple(NEGATIVE_SAMPLERS) + ("ppr",)
    assert all(name in actions()["model"].help for name in MODELS)

    @dataclass
    class _ToySettings(ObjectiveSettings):
        scale: float = 1.0

    register_objective("toy_loss_cli", _ToySettings, lambda s, sampling, nn: None, "a toy")
    try:
        assert "toy_loss_cli" in actions()["loss"].choices
    finally:
        del OBJECTIVES["toy_loss_cli"]
