"""DataConfig -> load_data: every source kind and the validation carve-out."""
import pytest
import torch

from graphcf.data import has_split, split_edge_index
from graphcf.data.source import DataConfig, load_data, with_validation
from graphcf.data.synthetic import write_synthetic_csv

SMALL = {"num_users": 120, "num_items": 80, "num_clusters": 4}


def test_synthetic_loo_and_random():
    d, m = load_data(DataConfig(synthetic=SMALL))
    assert split_edge_index(d, "test").shape[1] == 120 and has_split(d, "val")
    d2, _ = load_data(DataConfig(synthetic=SMALL, split="random", ratios=(0.7, 0.3)))
    assert not has_split(d2, "val") and split_edge_index(d2, "test").shape[1] > 120


def test_csv_with_string_ids_and_kcore(tmp_path):
    p = write_synthetic_csv(tmp_path / "x.csv", **SMALL)
    d, m = load_data(DataConfig(path=str(p), format="csv", time_col="timestamp", kcore=3))
    assert m.users.raw.dtype.kind == "U" and d["user"].num_nodes == m.num_users
    assert split_edge_index(d, "test").shape[1] == m.num_users  # one latest item per user


def test_val_carve_out_keeps_test_and_removes_from_train():
    d, _ = load_data(DataConfig(synthetic=SMALL, split="random", ratios=(0.8, 0.2)))
    v = with_validation(d, 0.1, seed=0)
    tr0 = set(map(tuple, split_edge_index(d, "train").t().tolist()))
    tr1 = set(map(tuple, split_edge_index(v, "train").t().tolist()))
    va = set(map(tuple, split_edge_index(v, "val").t().tolist()))
    assert tr1 | va == tr0 and not (tr1 & va)
    assert torch.equal(split_edge_index(v, "test"), split_edge_index(d, "test"))
    with pytest.raises(ValueError, match="already has a 'val'"):
        with_validation(v, 0.1)
    d3, _ = load_data(DataConfig(synthetic=SMALL, split="random", ratios=(0.8, 0.2), val_ratio=0.1))
    assert has_split(d3, "val")


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="format must be one of"):
        DataConfig(format="parquet")
    with pytest.raises(ValueError, match="give 'format'"):
        load_data(DataConfig(path=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="is not a file"):
        load_data(DataConfig(path=str(tmp_path), format="csv"))
