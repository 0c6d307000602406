import torch

from graphcf.data.readers import read_delimited
from graphcf.data.synthetic import make_synthetic, synthetic_dataset, write_synthetic_csv


def test_synthetic_structure_and_seed():
    x, uc, ic = make_synthetic(num_users=300, num_items=200, num_clusters=5, in_cluster=0.8, seed=1)
    # no duplicate pairs, planted cluster share close to in_cluster (+ chance share 1/5 of the rest)
    assert len(torch.unique(x.keys())) == len(x)
    share = (uc[x.user] == ic[x.item]).float().mean().item()
    assert 0.6 < share < 0.9  # chance level would be 1/5
    deg = torch.bincount(x.item, minlength=200).float()
    assert deg.max() > 5 * deg.median()  # skewed popularity
    y, _, _ = make_synthetic(num_users=300, num_items=200, num_clusters=5, seed=1)
    assert torch.equal(x.keys(), y.keys())


def test_synthetic_dataset_and_csv(tmp_path):
    data, idmap = synthetic_dataset(num_users=100, num_items=80, num_clusters=4)
    assert data["user"].num_nodes == 100 and "test_edge_label_index" in data["user", "interacts", "item"]
    p = write_synthetic_csv(tmp_path / "x.csv", num_users=50, num_items=40, num_clusters=4)
    raw = read_delimited(p, user_col="user_id", item_col="item_id", time_col="timestamp")
    assert str(raw.user[0]).startswith("u") and raw.timestamp is not None
