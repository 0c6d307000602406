"""PinSAGE importance neighbourhoods: the most visited nodes of short random walks."""
import pytest
import torch

from graphcf.data import Interactions, to_heterodata
from graphcf.samplers.random_walk import _bipartite_csr, importance_neighborhoods, random_walk


def _random_graph(nu=12, ni=15, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(nu, ni, generator=g) < p
    m[torch.arange(nu), torch.arange(nu) % ni] = True  # no isolated user
    m[torch.arange(ni) % nu, torch.arange(ni)] = True  # no isolated item
    return torch.stack(m.nonzero(as_tuple=True)), m.double()


def _expected_visits(m, side, walk_length, restart):
    """Expected visit distribution of the walks: sum_k (1-p)^(k-1) (P^2)^k, origin excluded."""
    r = m if side == "item" else m  # rows: users, cols: items
    p_ui = r / r.sum(1, keepdim=True)
    p_iu = r.T / r.T.sum(1, keepdim=True)
    step = p_iu @ p_ui if side == "item" else p_ui @ p_iu
    total, cur = torch.zeros_like(step), torch.eye(step.shape[0], dtype=step.dtype)
    for k in range(1, walk_length + 1):
        cur = cur @ step
        total += (1 - restart) ** (k - 1) * cur
    total.fill_diagonal_(0)
    return total / total.sum(1, keepdim=True)


@pytest.mark.parametrize("side,walk_length,restart", [("item", 1, 0.0), ("item", 2, 0.5), ("user", 3, 0.3)])
def test_weights_match_exact_visit_probabilities(side, walk_length, restart):
    ei, m = _random_graph()
    nbrs = importance_neighborhoods(ei, 12, 15, node_type=side, num_neighbors=40, num_walks=6000,
                                    walk_length=walk_length, restart_prob=restart,
                                    generator=torch.Generator().manual_seed(0))
    want = _expected_visits(m, side, walk_length, restart)
    n = want.shape[0]
    got = torch.zeros(n, n, dtype=torch.float64)
    for v in range(n):
        keep = nbrs.index[v] >= 0
        got[v, nbrs.index[v][keep]] = nbrs.weight[v][keep].double()
    # T = 40 exceeds every neighbourhood, so all visited nodes are kept: the weights are the visit shares
    assert (got - want).abs().max() < 0.03
    # zero-probability nodes (beyond reach or the origin itself) are never neighbours
    assert torch.all(got[want == 0] == 0)


def test_top_t_are_the_most_visited_sorted_and_normalised():
    ei, m = _random_graph(20, 30, 0.2, seed=1)
    t = 4
    full = importance_neighborhoods(ei, 20, 30, "item", num_neighbors=100, num_walks=300,
                                    generator=torch.Generator().manual_seed(5))
    top = importance_neighborhoods(ei, 20, 30, "item", num_neighbors=t, num_walks=300,
                                   generator=torch.Generator().manual_seed(5))
    assert top.index.shape == (30, t)
    for v in range(30):
        k = int((top.index[v] >= 0).sum())
        # same walks (same seed): the top-T are the first T of the full ranking
        assert torch.equal(top.index[v, :k], full.index[v, :k])
        assert v not in top.index[v].tolist()
        w = top.weight[v, :k]
        assert torch.all(w[:-1] >= w[1:])  # decreasing importance
        assert abs(float(w.sum()) - 1.0) < 1e-5 if k else float(w.sum()) == 0.0
        assert torch.all(top.weight[v, k:] == 0) and torch.all(top.index[v, k:] == -1)


def test_hand_worked_star():
    # users 0, 1 both like items 0; user 0 also likes 1, user 1 also likes 2.
    ei = torch.tensor([[0, 0, 1, 1], [0, 1, 0, 2]])
    nb = importance_neighborhoods(ei, 2, 3, "item", num_neighbors=2, num_walks=4000, walk_length=1,
                                  restart_prob=0.0, generator=torch.Generator().manual_seed(0))
    # from item 0: user 0 or 1 (1/2 each), then item 0 (self, dropped) or the other item: items 1 and 2 share equally
    assert sorted(nb.index[0].tolist()) == [1, 2]
    assert abs(float(nb.weight[0, 0]) - 0.5) < 0.05
    # from item 1: only user 0, then item 0 (1/2) or itself: its only neighbour is item 0
    assert nb.index[1].tolist() == [0, -1] and float(nb.weight[1, 0]) == pytest.approx(1.0)


def test_walks_use_training_edges_only():
    # item 3 is reachable only through a held-out (test) edge of user 0
    tr = Interactions(torch.tensor([0, 0, 1, 1, 2]), torch.tensor([0, 1, 1, 2, 2]), 3, 4)
    te = Interactions(torch.tensor([0]), torch.tensor([3]), 3, 4)
    data = to_heterodata({"train": tr, "test": te})
    from graphcf.nn.encoders import PinSAGEEncoder

    enc = PinSAGEEncoder(3, 4, dim=4, num_layers=1, num_walks=200)
    nb_u, nb_i = enc.neighborhoods(data)
    assert 3 not in nb_i.index.flatten().tolist()
    assert torch.all(nb_i.index[3] == -1)


def test_reproducible_and_global_rng_untouched():
    ei, _ = _random_graph()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = importance_neighborhoods(ei, 12, 15, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)
    b = importance_neighborhoods(ei, 12, 15, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.index, b.index) and torch.equal(a.weight, b.weight)


def test_random_walk_follows_edges():
    ei, m = _random_graph()
    rowptr, col = _bipartite_csr(ei, 12, 15)
    walks = random_walk(rowptr, col, torch.arange(27), 6, generator=torch.Generator().manual_seed(0))
    assert walks.shape == (27, 7)
    a = torch.zeros(27, 27, dtype=torch.bool)
    a[:12, 12:] = m.bool()
    a[12:, :12] = m.bool().T
    assert a[walks[:, :-1].flatten(), walks[:, 1:].flatten()].all()


def test_argument_errors():
    ei, _ = _random_graph()
    for bad, match in (({"node_type": "board"}, "node_type"), ({"num_neighbors": 0}, "num_neighbors"),
                       ({"restart_prob": 1.0}, "restart_prob"), ({"walk_length": 0}, "walk_length")):
        with pytest.raises(ValueError, match=match):
            importance_neighborhoods(ei, 12, 15, **bad)


def test_isolated_nodes_get_no_neighbours_and_do_not_crash():
    # item 2 and 3 have no training edge (e.g. they occur only in the test split)
    ei = torch.tensor([[0, 0, 1], [0, 1, 1]])
    nb = importance_neighborhoods(ei, 2, 4, "item", num_neighbors=3, num_walks=50,
                                  generator=torch.Generator().manual_seed(0))
    assert torch.all(nb.index[2:] == -1) and torch.all(nb.weight[2:] == 0)
    assert nb.index[0, 0] == 1 and nb.index[1, 0] == 0
    rowptr = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match="no edges"):
        random_walk(rowptr, torch.tensor([0]), torch.tensor([1]), 2)
