"""PinSAGEEncoder: mini-batch computation graphs equal the full-graph layers; neighbourhood cache."""
import pytest
import torch

from graphcf.data import Interactions, to_heterodata
from graphcf.nn.encoders import PinSAGEEncoder
from graphcf.nn.encoders.pinsage import computation_graph
from graphcf.samplers.random_walk import ImportanceNeighborhoods
from graphcf.train import Trainer, TrainConfig


def _data(nu=30, ni=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(nu, ni, generator=g) < 0.15
    m[torch.arange(nu), torch.arange(nu) % ni] = True
    u, i = m.nonzero(as_tuple=True)
    return to_heterodata({"train": Interactions(u, i, nu, ni)})


def test_embed_rows_equals_full_forward():
    torch.manual_seed(0)
    data = _data()
    enc = PinSAGEEncoder(30, 40, dim=8, num_layers=2, num_neighbors=4, num_walks=30).double()
    full = enc(data)
    users = torch.tensor([3, 3, 0, 29, 7])
    items = torch.tensor([5, 39, 5, 0])
    rows = enc.embed_rows(data, users, items)
    torch.testing.assert_close(rows.user, full.user[users])
    torch.testing.assert_close(rows.item, full.item[items])
    torch.testing.assert_close(enc(data, users=users).user, full.user[users])
    # gradients flow to the ID embeddings of the computation graph only
    rows.user.sum().backward()
    assert enc.user_emb.weight.grad.abs().sum() > 0 and enc.item_emb.weight.grad is None


def test_computation_graph_hand_worked():
    # chain 0 <- 1 <- 2 <- 3 (each node's only neighbour is the next one), node 4 isolated
    idx = torch.tensor([[1], [2], [3], [-1], [-1]])
    nb = ImportanceNeighborhoods(idx, torch.tensor([[1.0], [1.0], [1.0], [0.0], [0.0]]))
    nodes, ei, w, pos = computation_graph(nb, torch.tensor([0, 0]), depth=2)
    assert nodes.tolist() == [0, 1, 2]
    assert pos.tolist() == [0, 0]
    # edges 1->0 and 2->1 (2's neighbour 3 is outside the 2-hop graph)
    assert sorted(map(tuple, ei.T.tolist())) == [(1, 0), (2, 1)]
    assert w.tolist() == [1.0, 1.0]


def test_neighbourhoods_cached_until_the_graph_changes():
    data = _data()
    enc = PinSAGEEncoder(30, 40, dim=4, num_layers=1, num_walks=10)
    a = enc.neighborhoods(data)
    assert enc.neighborhoods(data) is a
    data2 = _data(seed=1)
    b = enc.neighborhoods(data2)
    assert b is not a and not torch.equal(b[1].index, a[1].index)
    # a fresh encoder with the same seed builds the same neighbourhoods
    c = PinSAGEEncoder(30, 40, dim=4, num_layers=1, num_walks=10).neighborhoods(data2)
    assert torch.equal(c[0].index, b[0].index) and torch.equal(c[1].weight, b[1].weight)


def test_outputs_unit_norm_and_state_dict_round_trip():
    torch.manual_seed(0)
    data = _data()
    enc = PinSAGEEncoder(30, 40, dim=8, num_layers=2)
    out = enc(data)
    norms = torch.cat([out.user, out.item]).norm(dim=1)
    assert torch.all(((norms - 1).abs() < 1e-5) | (norms == 0))
    enc2 = PinSAGEEncoder(30, 40, dim=8, num_layers=2)
    enc2.load_state_dict(enc.state_dict())
    torch.testing.assert_close(enc2(data).item, out.item)


def test_linkneighbor_sampling_mode_is_refused_with_an_explanation():
    data = _data()
    enc = PinSAGEEncoder(30, 40, dim=4, num_layers=1, num_walks=5)
    with pytest.raises(ValueError, match="computation graphs"):
        Trainer(TrainConfig.from_flat(epochs=1, sampling="neighbor", num_neighbors=(2,), eval_every=0)).fit(enc, data)
