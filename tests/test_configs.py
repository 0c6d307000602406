"""Every shipped YAML config (docs/configs, benchmarks/configs) names real keys and builds.

A typo in a recipe (``lr_platau``, a model argument that does not exist) must fail here rather
than half way through an hour-long reproduction.
"""
from pathlib import Path

import pytest
import torch

from graphcf.config import dataclass_from, load_config
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
    train = dataclass_from(TrainConfig, {**default_train_args(model), **cfg.get("train", {})}, f"{path}: train")
    for key, value in cfg.get("train", {}).items():  # the YAML's values are the ones that take effect
        got = getattr(train, key)
        assert (tuple(got) if isinstance(got, (list, tuple)) else got) == (
            tuple(value) if isinstance(value, list) else value), key


def test_a_misspelt_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: multvae\ntrain:\n  lr_platau: 1\n")
    cfg = load_config(bad)
    with pytest.raises(ValueError, match="lr_platau"):
        dataclass_from(TrainConfig, cfg["train"], "train")
