"""Every shipped YAML config (docs/configs, benchmarks/configs) names real keys and builds.

A typo in a recipe (``lr_platau``, a model argument that does not exist) must fail here rather
than half way through an hour-long reproduction.
"""
from pathlib import Path

import pytest
import torch

from graphcf.config import coerce_kwargs, load_config
from graphcf.models import build_model, default_train_args
from graphcf.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted([*ROOT.glob("docs/configs/*.yaml"), *ROOT.glob("benchmarks/configs/*.yaml")])


def test_there_are_configs():
    assert any(p.parent.name == "configs" and p.parent.parent.name == "benchmarks" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_config_builds_model_and_train_config(path):
    cfg = load_config(path)
    model = cfg["model"]
    enc, scorer = build_model(model, 6, 9, cfg.get("model_args", {}))
    assert isinstance(enc, torch.nn.Module)
    train = TrainConfig.from_flat({**default_train_args(model), **cfg.get("train", {})}, f"{path}: train")
    for key, value in cfg.get("train", {}).items():  # the YAML's values are the ones that take effect
        got = getattr(train, key)
        assert (tuple(got) if isinstance(got, (list, tuple)) else got) == (
            tuple(value) if isinstance(value, list) else value), key


def test_a_misspelt_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: multvae\ntrain:\n  lr_platau: 1\n")
    cfg = load_config(bad)
    with pytest.raises(ValueError, match="lr_platau"):
        TrainConfig.from_flat(cfg["train"], "train")


def test_yaml_exponent_floats_are_numbers(tmp_path):
    """PyYAML reads ``5e-3`` (no dot) as a string; the train and model_args sections still get a float."""
    path = tmp_path / "exp.yaml"
    path.write_text("model: lightgcn\nmodel_args:\n  init_std: 1e-1\ntrain:\n  lr: 5e-3\n  reg: 1e-4\n"
                    "  epochs: 1.0e2\n")
    cfg = load_config(path)
    assert cfg["train"]["lr"] == "5e-3"  # the YAML quirk this guards against
    train = TrainConfig.from_flat(cfg["train"], "train")
    assert train.lr == 0.005 and isinstance(train.lr, float)
    assert train.objective.reg == 0.0001 and train.epochs == 100 and isinstance(train.epochs, int)
    enc, _ = build_model("lightgcn", 6, 9, cfg["model_args"])
    assert enc.init_std == 0.1


def test_coerce_kwargs_follows_the_annotations():
    def f(a: float, b: int, c: bool, d: str, e=None):  # pragma: no cover - only the signature is read
        pass

    got = coerce_kwargs(f, {"a": "1e-3", "b": "2", "c": False, "d": "1e-3", "e": "x"}, "f")
    assert got == {"a": 0.001, "b": 2, "c": False, "d": "1e-3", "e": "x"}
    assert isinstance(got["a"], float) and isinstance(got["b"], int)


@pytest.mark.parametrize("key,value,expected", [("lr", "fast", "expected a number"),
                                                ("epochs", 2.5, "expected an integer"),
                                                ("epochs", "ten", "expected an integer"),
                                                ("curriculum", "yes", "expected true or false"),
                                                ("lr", True, "expected a number")])
def test_wrong_value_types_name_the_key(key, value, expected):
    with pytest.raises(ValueError, match=f"train: (objective \\(bpr\\): )?{key}: {expected}"):
        TrainConfig.from_flat({key: value}, "train")


def test_model_args_scorer_picks_the_generic_scorer():
    from graphcf.nn.scorers import CosineScorer, DotScorer

    _, dot = build_model("lightgcn", 6, 9, {})
    enc, cos = build_model("lightgcn", 6, 9, {"scorer": "cosine", "num_layers": 2})
    assert type(dot) is DotScorer and type(cos) is CosineScorer and enc.num_layers == 2
    u, i = torch.randn(4, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    want = (u / u.norm(dim=1, keepdim=True)) @ (i / i.norm(dim=1, keepdim=True)).T
    torch.testing.assert_close(cos.score_all(u, i), want)
    assert type(build_model("mf", 6, 9, {"scorer": "dot"})[1]) is DotScorer


@pytest.mark.parametrize("model,args,match", [("mf", {"scorer": "cos"}, "scorer must be one of"),
                                              ("gmf", {"scorer": "cosine"}, "brings its own GMFScorer")])
def test_model_args_scorer_rejects_what_it_cannot_do(model, args, match):
    with pytest.raises(ValueError, match=match):
        build_model(model, 6, 9, args)
