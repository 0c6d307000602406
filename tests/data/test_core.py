"""IdMap, Interactions, encode and to_heterodata."""
import numpy as np
import pytest
import torch

from graphcf.data import IdMap, Interactions, RawInteractions, encode, interactions_of, split_edge_index, to_heterodata
from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER


def test_idmap_roundtrip_strings(tmp_path):
    m = IdMap.fit(np.array(["u9", "u1", "u5"]), np.array(["b", "a"]))
    assert m.encode_users(np.array(["u1", "u5", "u9"])).tolist() == [0, 1, 2]
    assert m.decode_items(torch.tensor([[1, 0]])).tolist() == [["b", "a"]]
    m.save(tmp_path / "m.json")
    m2 = IdMap.load(tmp_path / "m.json")
    assert m2 == m
    assert m2.decode_users([2]).tolist() == ["u9"]


def test_idmap_int_ids_identity_and_unknown():
    m = IdMap.fit(np.array([2, 0, 1]), np.array([10, 30]))
    assert m.users.is_identity and not m.items.is_identity
    assert m.encode_items(np.array([30, 10])).tolist() == [1, 0]
    with pytest.raises(KeyError, match="unknown raw id 20"):
        m.encode_items(np.array([10, 20]))


def test_idmap_int_roundtrip_json_keeps_ints(tmp_path):
    m = IdMap.fit(np.array([5, 7]), np.array([1, 3]))
    m.save(tmp_path / "m.json")
    assert IdMap.load(tmp_path / "m.json").decode_items([1]).tolist() == [3]


def test_interactions_validation():
    with pytest.raises(ValueError, match="num_items=3"):
        Interactions(torch.tensor([0]), torch.tensor([3]), 1, 3)
    with pytest.raises(ValueError, match="negative"):
        Interactions(torch.tensor([-1]), torch.tensor([0]), 1, 3)
    with pytest.raises(ValueError, match="equal length"):
        Interactions(torch.tensor([0, 0]), torch.tensor([0]), 1, 3)


def test_encode_and_heterodata_layout():
    raw = {
        "train": RawInteractions(np.array(["a", "b", "b"]), np.array([10, 20, 30]), rating=np.array([1.0, 2.0, 3.0])),
        "test": RawInteractions(np.array(["a"]), np.array([30])),
    }
    splits, idmap = encode(raw)
    data = to_heterodata(splits)
    assert data[USER].num_nodes == 2 and data[ITEM].num_nodes == 3
    assert data[INTERACTS].edge_index.tolist() == [[0, 1, 1], [0, 1, 2]]
    assert data[REV_INTERACTS].edge_index.tolist() == [[0, 1, 2], [0, 1, 1]]
    assert data[INTERACTS].edge_weight.tolist() == [1.0, 2.0, 3.0]
    assert split_edge_index(data, "test").tolist() == [[0], [2]]
    back = interactions_of(data, "train")
    assert back.user.tolist() == [0, 1, 1] and back.weight.tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(KeyError, match="split 'val' not in this graph"):
        split_edge_index(data, "val")


def test_extra_users_get_indices():
    raw = {"train": RawInteractions(np.array([0, 2]), np.array([0, 1]), extra_users=np.array([1, 3]))}
    splits, idmap = encode(raw)
    assert idmap.num_users == 4 and splits["train"].num_users == 4


def test_to_heterodata_rejects_mismatched_universes():
    a = Interactions(torch.tensor([0]), torch.tensor([0]), 2, 2)
    b = Interactions(torch.tensor([0]), torch.tensor([0]), 2, 3)
    with pytest.raises(ValueError, match="universe"):
        to_heterodata({"train": a, "test": b})
    with pytest.raises(ValueError, match="'train' split is required"):
        to_heterodata({"test": a})
