"""Tests of graphcf.data.loaders on small dataset directories written by each test."""
from __future__ import annotations

import logging

import pytest
import torch

from graphcf.data import num_users_items, split_edge_index, train_edge_index
from graphcf.data.loaders import load_lightgcn_dir, load_ncf, load_triples_dir
from graphcf.data.readers import ReaderError
from graphcf.typing import INTERACTS, REV_INTERACTS

LOGGER = "graphcf.data.loaders"


def write_dir(d, **files):
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name.replace("__", ".")).write_text(text)
    return d


def pairs(ei):
    return sorted(zip(ei[0].tolist(), ei[1].tolist()))


# ------------------------------------------------------------------ LightGCN directories


def test_lightgcn_dir_identity(tmp_path, caplog):
    d = write_dir(tmp_path / "gw", train__txt="0 0 1\n1 2\n2 1 3\n", test__txt="0 2\n1 3 0\n2\n")
    with caplog.at_level(logging.WARNING, LOGGER):
        data, idmap = load_lightgcn_dir(d)
    assert not caplog.records
    assert num_users_items(data) == (3, 4)
    assert idmap.users.is_identity and idmap.items.is_identity
    assert pairs(train_edge_index(data)) == [(0, 0), (0, 1), (1, 2), (2, 1), (2, 3)]
    assert pairs(split_edge_index(data, "test")) == [(0, 2), (1, 0), (1, 3)]
    assert torch.equal(data[REV_INTERACTS].edge_index, data[INTERACTS].edge_index.flip(0))
    assert "val_edge_label_index" not in data[INTERACTS]
    assert train_edge_index(data).dtype == torch.long


@pytest.mark.parametrize("val_name", ["valid.txt", "val.txt"])
def test_lightgcn_dir_with_validation(tmp_path, val_name):
    d = write_dir(tmp_path / "ds", train__txt="0 0 1\n1 1 2\n", test__txt="0 2\n")
    (d / val_name).write_text("1 0\n")
    data, _ = load_lightgcn_dir(d)
    assert pairs(split_edge_index(data, "val")) == [(1, 0)]
    (d / ("val.txt" if val_name == "valid.txt" else "valid.txt")).write_text("1 0\n")
    with pytest.raises(ValueError, match="only one validation file"):
        load_lightgcn_dir(d)


def test_lightgcn_dir_declared_universe(tmp_path, caplog):
    d = write_dir(
        tmp_path / "ds",
        train__txt="0 0 1\n1 1\n",
        test__txt="0 2\n",
        user_list__txt="org_id remap_id\n17 0\n18 1\n19 2\n20 3\n",
        item_list__txt="org_id remap_id\n5 0\n6 1\n7 2\n8 3\n9 4\n",
    )
    with caplog.at_level(logging.WARNING, LOGGER):
        data, idmap = load_lightgcn_dir(d)
    assert num_users_items(data) == (4, 5)
    assert idmap.num_users == 4 and idmap.items.is_identity
    assert "occur in no file" in caplog.text
    (d / "test.txt").write_text("0 2\n1 5\n")
    with pytest.raises(ReaderError) as ei:
        load_lightgcn_dir(d)
    assert "test.txt" in str(ei.value) and "line 2:" in str(ei.value) and "num_items=5" in str(ei.value)


UNSEEN_FILES = dict(train__txt="0 0 1\n1 1 2\n", test__txt="0 2\n1 0 3\n2 1\n")  # user 2, item 3 unseen


def test_unseen_keep(tmp_path, caplog):
    d = write_dir(tmp_path / "ds", **UNSEEN_FILES)
    with caplog.at_level(logging.WARNING, LOGGER):
        data, _ = load_lightgcn_dir(d)
    assert num_users_items(data) == (3, 4)
    assert pairs(split_edge_index(data, "test")) == [(0, 2), (1, 0), (1, 3), (2, 1)]
    msg = caplog.text
    assert "1 users and 1 items" in msg and "2 of 4 'test' rows" in msg and "test.txt" in msg


def test_unseen_drop(tmp_path, caplog):
    d = write_dir(tmp_path / "ds", **UNSEEN_FILES)
    with caplog.at_level(logging.WARNING, LOGGER):
        data, _ = load_lightgcn_dir(d, unseen="drop")
    assert pairs(split_edge_index(data, "test")) == [(0, 2), (1, 0)]
    assert num_users_items(data) == (2, 3)
    assert "dropped those 2 rows" in caplog.text


def test_unseen_error(tmp_path):
    d = write_dir(tmp_path / "ds", **UNSEEN_FILES)
    with pytest.raises(ValueError, match=r"test\.txt.*1 users and 1 items"):
        load_lightgcn_dir(d, unseen="error")
    with pytest.raises(ValueError, match="unseen must be"):
        load_lightgcn_dir(d, unseen="ignore")


def test_heldout_train_overlap_is_reported(tmp_path, caplog):
    d = write_dir(tmp_path / "ds", train__txt="0 0 1\n1 1 2\n", test__txt="0 1 2\n1 0\n", valid__txt="0 2\n")
    with caplog.at_level(logging.WARNING, LOGGER):
        data, _ = load_lightgcn_dir(d)
    assert "1 distinct (user, item) pairs of the 'test' split are also training pairs" in caplog.text
    assert "1 distinct (user, item) pairs are in both the 'val' and 'test' splits" in caplog.text
    assert split_edge_index(data, "test").shape == (2, 3)  # reported, not removed


def test_lightgcn_dir_missing_file(tmp_path):
    d = write_dir(tmp_path / "ds", train__txt="0 1\n")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        load_lightgcn_dir(d)


# ------------------------------------------------------------------ triples directories


def test_triples_dir(tmp_path, caplog):
    d = write_dir(
        tmp_path / "cite",
        train__txt="0 0 1\n0 1 1\n1 1 1\n2 2 1\n",
        valid__txt="1 0 1\n",
        test__txt="2 1 1\n0 2 1\n",
    )
    with caplog.at_level(logging.WARNING, LOGGER):
        data, idmap = load_triples_dir(d)
    assert not caplog.records
    assert num_users_items(data) == (3, 3) and idmap.users.is_identity
    store = data[INTERACTS]
    assert pairs(store.edge_index) == [(0, 0), (0, 1), (1, 1), (2, 2)]
    assert torch.equal(store.edge_weight, torch.ones(4))
    assert pairs(store.val_edge_label_index) == [(1, 0)]
    assert pairs(store.test_edge_label_index) == [(0, 2), (2, 1)]


def test_triples_dir_unseen_drop_refits(tmp_path):
    d = write_dir(tmp_path / "t", train__txt="0 0 1\n1 1 1\n", test__txt="0 1 1\n5 0 1\n1 9 1\n")
    data, idmap = load_triples_dir(d, unseen="drop")
    assert num_users_items(data) == (2, 2)
    assert pairs(split_edge_index(data, "test")) == [(0, 1)]
    data, idmap = load_triples_dir(d)  # keep: raw ids 5 and 9 get the next indices
    assert num_users_items(data) == (3, 3)
    assert idmap.decode_users([2]).tolist() == [5] and idmap.decode_items([2]).tolist() == [9]


# ------------------------------------------------------------------ NCF


def write_ncf(tmp_path, train, test, neg):
    (tmp_path / "ml.train.rating").write_text(train)
    (tmp_path / "ml.test.rating").write_text(test)
    (tmp_path / "ml.test.negative").write_text(neg)
    return str(tmp_path / "ml")


NCF_TRAIN = "0\t0\t5\t100\n0\t1\t4\t101\n1\t1\t3\t102\n1\t2\t1\t103\n2\t0\t2\t104\n"
NCF_TEST = "0\t2\t5\t200\n1\t0\t4\t201\n2\t3\t3\t202\n"
NCF_NEG = "(0,2)\t3\t4\n(1,0)\t4\t3\n(2,3)\t1\t2\n"


def test_ncf_negatives_aligned(tmp_path):
    prefix = write_ncf(tmp_path, NCF_TRAIN, NCF_TEST, NCF_NEG)
    data, idmap = load_ncf(prefix)
    store = data[INTERACTS]
    assert num_users_items(data) == (3, 5)  # negative item 4 extends the universe
    assert store.test_edge_label_index.tolist() == [[0, 1, 2], [2, 0, 3]]
    neg = store.test_neg_items
    assert neg.dtype == torch.long and neg.shape == (3, 2)
    assert neg.tolist() == [[3, 4], [4, 3], [1, 2]]
    assert store.edge_weight.tolist() == [5, 4, 3, 1, 2]
    assert store.time.tolist() == [100, 101, 102, 103, 104]
    assert store.test_time.tolist() == [200, 201, 202]
    # row j of the negatives belongs to test edge j: no negative equals its positive
    assert not (neg == store.test_edge_label_index[1][:, None]).any()


def test_ncf_mismatch_names_line(tmp_path):
    prefix = write_ncf(tmp_path, NCF_TRAIN, NCF_TEST, "(0,2)\t3\t4\n\n(1,1)\t4\t3\n(2,3)\t1\t2\n")
    with pytest.raises(ReaderError) as ei:
        load_ncf(prefix)
    msg = str(ei.value)
    assert "ml.test.negative" in msg and "line 3:" in msg and "(1,1)" in msg and "ml.test.rating" in msg


def test_ncf_row_count_mismatch(tmp_path):
    prefix = write_ncf(tmp_path, NCF_TRAIN, NCF_TEST, "(0,2)\t3\t4\n(1,0)\t4\t3\n(2,3)\t1\t2\n(2,4)\t1\t2\n")
    with pytest.raises(ReaderError) as ei:
        load_ncf(prefix)
    assert "ml.test.negative" in str(ei.value) and "line 4:" in str(ei.value)
    prefix = write_ncf(tmp_path, NCF_TRAIN, NCF_TEST, "(0,2)\t3\t4\n(1,0)\t4\t3\n")
    with pytest.raises(ReaderError, match="fewer rows"):
        load_ncf(prefix)


def test_ncf_unseen_drop_keeps_alignment(tmp_path, caplog):
    test = "0\t2\t5\t200\n7\t0\t4\t201\n2\t1\t3\t202\n"  # user 7 unseen
    neg = "(0,2)\t3\t4\n(7,0)\t4\t3\n(2,1)\t3\t4\n"
    prefix = write_ncf(tmp_path, NCF_TRAIN, test, neg)
    with caplog.at_level(logging.WARNING, LOGGER):
        data, _ = load_ncf(prefix, unseen="drop")
    store = data[INTERACTS]
    assert store.test_edge_label_index.tolist() == [[0, 2], [2, 1]]
    assert store.test_neg_items.tolist() == [[3, 4], [3, 4]]
    assert "dropped those 1 rows" in caplog.text
    with pytest.raises(ValueError, match="ml.test.rating"):
        load_ncf(prefix, unseen="error")
