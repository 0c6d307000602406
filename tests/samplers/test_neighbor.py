"""Neighbour-sampled training: subgraph weights, exactness with all neighbours, masking, determinism."""
import pytest
import torch

from contracts import KillAt, Killed
from graphcf.data.synthetic import synthetic_dataset
from graphcf.losses import bpr_loss
from graphcf.nn.encoders import LightGCNEncoder, MFEncoder, NGCFEncoder
from graphcf.nn.scorers import DotScorer
from graphcf.objectives import NeighborPairwiseObjective
from graphcf.samplers.neighbor import (NeighborBatches, batch_triples, neighbor_graph, sampled_edge_weights,
                                      sampled_self_mean_weights)
from graphcf.train import Trainer, TrainConfig
from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER


@pytest.fixture(scope="module")
def data():
    d, _ = synthetic_dataset(num_users=120, num_items=80, num_clusters=3, mean_degree=10, seed=1)
    return d


def _batches(data, num_neighbors, batch_size=32, seed=0, num_negatives=2):
    nb = NeighborBatches(num_neighbors, num_negatives)
    nb.setup(data)
    return list(nb.batches(batch_size, torch.Generator().manual_seed(seed)))


def test_hand_worked_sampled_weights():
    # target 0 has full degree 4 and 2 sampled neighbours (sources 0, 1 with degrees 1 and 9):
    # weight = (4 / 2) / sqrt(4 * d_s)
    ei = torch.tensor([[0, 1, 2], [0, 0, 1]])
    w = sampled_edge_weights(ei, torch.tensor([1.0, 9.0, 4.0]), torch.tensor([4.0, 1.0]))
    torch.testing.assert_close(w, torch.tensor([2 / 2.0, 2 / 6.0, 1 / 2.0]))


def test_hand_worked_sampled_self_mean_weights():
    # target 0 has full degree 4 and 2 sampled neighbours: each weighs (4 / 2) / (4 + 1), itself 1 / 5;
    # target 1 has degree 1, its one neighbour sampled: 1 / 2 each
    ei = torch.tensor([[0, 1, 2], [0, 0, 1]])
    w, self_w = sampled_self_mean_weights(ei, torch.tensor([4, 1]))
    torch.testing.assert_close(w, torch.tensor([0.4, 0.4, 0.5]))
    torch.testing.assert_close(self_w, torch.tensor([0.2, 0.5]))


@pytest.mark.parametrize("make", [
    lambda d: LightGCNEncoder(d["user"].num_nodes, d["item"].num_nodes, dim=8, num_layers=2),
    lambda d: NGCFEncoder(d["user"].num_nodes, d["item"].num_nodes, dim=8, layer_dims=(8, 8)),
    lambda d: NGCFEncoder(d["user"].num_nodes, d["item"].num_nodes, dim=8, layer_dims=(8, 8), variant="authors"),
])
def test_all_neighbours_give_exactly_the_full_graph_embeddings(data, make):
    torch.manual_seed(0)
    enc = make(data).double().eval()
    full = enc(data)
    for b in _batches(data, [-1, -1])[:3]:
        sub = enc(b)
        users, pos, neg = batch_triples(b)
        torch.testing.assert_close(sub.user[users], full.user[b[USER].n_id[users]])
        torch.testing.assert_close(sub.item[pos], full.item[b[ITEM].n_id[pos]])
        torch.testing.assert_close(sub.item[neg], full.item[b[ITEM].n_id[neg]])


def test_one_sampled_layer_is_unbiased(data):
    """The mean over many samples of a 1-layer LightGCN output approaches the full-graph output."""
    torch.manual_seed(0)
    enc = LightGCNEncoder(data["user"].num_nodes, data["item"].num_nodes, dim=4, num_layers=1,
                          alpha=(0.0, 1.0)).double()
    full = enc(data).user
    acc, cnt = torch.zeros_like(full), torch.zeros(full.size(0), dtype=torch.float64)
    for seed in range(60):
        for b in _batches(data, [3], batch_size=64, seed=seed):
            users = b[USER].src_index
            gid = b[USER].n_id[users]
            acc.index_add_(0, gid, enc(b).user[users])
            cnt.index_add_(0, gid, torch.ones(len(gid), dtype=torch.float64))
    seen = cnt > 50
    assert seen.sum() > 50
    err = (acc[seen] / cnt[seen, None] - full[seen]).abs().max()
    assert err < 0.25 * full[seen].abs().max()


def test_batches_use_only_training_edges_and_cover_each_once(data):
    train = set(map(tuple, data[INTERACTS].edge_index.t().tolist()))
    seen = []
    for b in _batches(data, [4, 4]):
        u, i = b[USER].n_id, b[ITEM].n_id
        for (s, t) in b[INTERACTS].edge_index.t().tolist():
            assert (int(u[s]), int(i[t])) in train
        for (s, t) in b[REV_INTERACTS].edge_index.t().tolist():
            assert (int(u[t]), int(i[s])) in train
        users, pos, _ = batch_triples(b)
        seen += list(zip(u[users].tolist(), i[pos].tolist()))
    assert sorted(seen) == sorted(train)
    g = neighbor_graph(data)
    assert "val_edge_label_index" not in g[INTERACTS] and torch.equal(g[USER].deg,
                                                                        torch.bincount(data[INTERACTS].edge_index[0],
                                                                                       minlength=120).float())


def test_negative_draws_that_are_positives_are_masked():
    # 6 users x 4 items, every user likes items 0-2: 3 of 4 uniform draws are positives
    u = torch.arange(6).repeat_interleave(3)
    i = torch.arange(3).repeat(6)
    from graphcf.data import Interactions, to_heterodata
    d = to_heterodata({"train": Interactions(u, i, 6, 4)})
    obj = NeighborPairwiseObjective(num_neighbors=[-1], num_negatives=3, reg=0.0)
    obj.setup(d)
    enc = LightGCNEncoder(6, 4, dim=4, num_layers=1).double()
    (b,) = next(obj.batches(d, 18, torch.Generator().manual_seed(0)))
    users, pos, neg = batch_triples(b)
    gneg = b[ITEM].n_id[neg]
    valid = gneg == 3
    assert valid.any() and (~valid).any()
    emb = enc(b)
    s_pos = (emb.user[users] * emb.item[pos]).sum(-1)
    s_neg = (emb.user[users, None] * emb.item[neg]).sum(-1)
    want = torch.nn.functional.softplus(s_neg - s_pos[:, None])[valid].mean()
    torch.testing.assert_close(obj.loss(enc, DotScorer(), d, (b,)), want)
    torch.testing.assert_close(bpr_loss(s_pos, s_neg, mask=valid), want)
    with pytest.raises(ValueError, match="mask"):
        bpr_loss(s_pos, s_neg, mask=valid[:, :1])


CFG = dict(epochs=4, batch_size=64, lr=0.02, reg=1e-4, eval_every=2, sampling="neighbor", num_neighbors=(4, 4),
           seed=5, patience=0)


def _enc(d):
    torch.manual_seed(0)
    return LightGCNEncoder(d["user"].num_nodes, d["item"].num_nodes, dim=8, num_layers=2)


def test_neighbor_training_is_seeded_and_resumes_exactly(data, tmp_path):
    a = Trainer(TrainConfig.from_flat(**CFG)).fit(_enc(data), data)
    b = Trainer(TrainConfig.from_flat(**CFG)).fit(_enc(data), data)
    assert a.test == b.test and [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    with pytest.raises(Killed):
        KillAt(TrainConfig.from_flat(**CFG), at=3).fit(_enc(data), data, out_dir=tmp_path)
    c = Trainer(TrainConfig.from_flat(**CFG)).fit(_enc(data), data, out_dir=tmp_path)
    assert c.test == a.test


def test_neighbor_mode_errors(data):
    mf = MFEncoder(data["user"].num_nodes, data["item"].num_nodes, dim=4)
    with pytest.raises(ValueError, match="sampled subgraphs"):
        Trainer(TrainConfig.from_flat(**CFG)).fit(mf, data)
    deep = LightGCNEncoder(data["user"].num_nodes, data["item"].num_nodes, dim=4, num_layers=3)
    with pytest.raises(ValueError, match="hops"):
        Trainer(TrainConfig.from_flat(**CFG)).fit(deep, data)
    with pytest.raises(ValueError, match="neighbor"):
        TrainConfig.from_flat(sampling="neighbor", loss="bce")
    with pytest.raises(ValueError, match="sampling"):
        TrainConfig.from_flat(sampling="sometimes")
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborBatches([0])


def test_every_neighbour_is_equally_likely_to_be_sampled():
    """torch-sparse alone draws a node's last neighbours about 35% less often (pytorch_sparse#385);
    NeighborBatches' per-epoch edge shuffle removes that."""
    from collections import Counter

    from graphcf.data import Interactions, to_heterodata

    u = torch.tensor([0] * 8 + list(range(1, 9)))
    i = torch.tensor(list(range(8)) * 2)
    d = to_heterodata({"train": Interactions(u, i, 9, 8)})
    nb = NeighborBatches([3], 1)
    nb.setup(d)
    counts: Counter = Counter()
    for seed in range(400):
        b = next(nb.batches(16, torch.Generator().manual_seed(seed)))  # one batch holds all 16 edges
        loc = int((b[USER].n_id == 0).nonzero()[0])
        e = b[REV_INTERACTS].edge_index
        counts.update(b[ITEM].n_id[e[0, e[1] == loc]].tolist())
    # Binomial(400, 3/8) per neighbour: mean 150, sd 9.7
    assert all(abs(counts[k] - 150) < 30 for k in range(8)), counts
