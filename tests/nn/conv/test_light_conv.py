"""LightConv, the sparse adjacency helpers and LightGCNEncoder against dense float64 algebra."""
import pytest
import torch
from torch_sparse import SparseTensor

from graphcf.data import Interactions, to_heterodata
from graphcf.nn.conv import LightConv
from graphcf.nn.encoders import LightGCNEncoder
from graphcf.nn.sparse import AdjacencyCache, BipartiteAdjacency, bipartite_sym_norm, spmm

U, I = 5, 4
# a hand-made bipartite graph; user 4 and item 3 have no edges
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3], [0, 1, 1, 2, 0, 0, 1, 2]])


def dense_rhat(edges=EDGES, weight=None, nu=U, ni=I):
    """R_hat = D_u^-1/2 R D_i^-1/2 as a dense float64 matrix (zero rows for isolated nodes)."""
    r = torch.zeros(nu, ni, dtype=torch.float64)
    w = torch.ones(edges.size(1), dtype=torch.float64) if weight is None else weight.double()
    r.index_put_((edges[0], edges[1]), w, accumulate=True)
    du, di = r.sum(1), r.sum(0)
    iu = torch.where(du > 0, du.rsqrt(), torch.zeros_like(du))
    ii = torch.where(di > 0, di.rsqrt(), torch.zeros_like(di))
    return iu[:, None] * r * ii[None, :]


def test_hand_worked_normalisation():
    # edge (0, 0): |N(user 0)| = 2 and |N(item 0)| = 3 -> 1 / sqrt(6)
    w = bipartite_sym_norm(EDGES, None, (U, I), dtype=torch.float64)
    assert w[0].item() == pytest.approx(6 ** -0.5)
    torch.testing.assert_close(w, dense_rhat()[EDGES[0], EDGES[1]])
    with pytest.raises(ValueError, match="edge_weight"):
        bipartite_sym_norm(EDGES, torch.ones(3), (U, I))


@pytest.mark.parametrize("weighted", [False, True])
def test_light_conv_every_input_form_matches_dense(weighted):
    g = torch.Generator().manual_seed(0)
    xu = torch.randn(U, 3, dtype=torch.float64, generator=g)
    xi = torch.randn(I, 3, dtype=torch.float64, generator=g)
    w = torch.rand(EDGES.size(1), dtype=torch.float64, generator=g) + 0.5 if weighted else None
    r = dense_rhat(weight=w)
    conv = LightConv()
    assert str(conv) == "LightConv(normalize=True)"
    # item -> user messages: edge_index with items as sources
    want_u = r @ xi
    torch.testing.assert_close(conv((xi, xu), EDGES.flip(0), w), want_u)
    # user -> item
    torch.testing.assert_close(conv((xu, xi), EDGES, w), r.t() @ xu)
    # the same through sparse adjacencies adj_t [num_dst, num_src]
    vals = torch.ones(EDGES.size(1), dtype=torch.float64) if w is None else w
    adj_t = torch.sparse_coo_tensor(EDGES, vals, (U, I)).coalesce()
    torch.testing.assert_close(conv((xi, xu), adj_t.to_sparse_csr()), want_u)
    torch.testing.assert_close(conv((xi, xu), adj_t), want_u)
    pre = dense_rhat(weight=w).to_sparse_csr()
    plain = LightConv(normalize=False)
    torch.testing.assert_close(plain((xi, xu), pre), want_u)
    torch.testing.assert_close(plain((xi, xu), pre, transpose=dense_rhat(weight=w).t().to_sparse_csr()), want_u)
    torch.testing.assert_close(plain((xi, xu), SparseTensor.from_dense(r)), want_u)
    # invariant to the order of the edges
    perm = torch.randperm(EDGES.size(1), generator=g)
    torch.testing.assert_close(conv((xi, xu), EDGES.flip(0)[:, perm], None if w is None else w[perm]), want_u)


def test_light_conv_rejects_bad_inputs():
    xu, xi = torch.randn(U, 3), torch.randn(I, 3)
    with pytest.raises(ValueError, match="num_dst"):
        LightConv()((xi, xu), torch.sparse_coo_tensor(EDGES, torch.ones(8), (U + 1, I)))
    with pytest.raises(ValueError, match="edge_weight"):
        LightConv()((xi, xu), torch.sparse_coo_tensor(EDGES, torch.ones(8), (U, I)), torch.ones(8))


def test_spmm_gradient_and_values():
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    torch.testing.assert_close(adj.user_from_item.to_dense(), dense_rhat())
    torch.testing.assert_close(adj.item_from_user.to_dense(), dense_rhat().t())
    x = torch.randn(I, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: spmm(adj.user_from_item, adj.item_from_user, t), (x,))
    with pytest.raises(ValueError, match="shapes"):
        spmm(adj.user_from_item, adj.user_from_item, x)
    with pytest.raises(IndexError, match="out of range"):
        BipartiteAdjacency.from_edge_index(EDGES, U, 2)


def test_adjacency_cache_rebuilds_only_when_the_graph_changes():
    cache = AdjacencyCache()
    ei = EDGES.clone()
    a = cache.get(ei, U, I)
    assert cache.get(ei, U, I) is a
    ei[1, 0] = 3  # in-place edit bumps the version counter
    b = cache.get(ei, U, I)
    assert b is not a and b.user_from_item.to_dense()[0, 3] > 0


def _graph(weight=None):
    data = to_heterodata({"train": Interactions(EDGES[0], EDGES[1], U, I, weight=weight)})
    return data


def dense_lightgcn(e_u, e_i, r, alpha):
    """sum_k alpha_k A_hat^k E on the (U + I) x (U + I) block adjacency."""
    a = torch.zeros(U + I, U + I, dtype=torch.float64)
    a[:U, U:] = r
    a[U:, :U] = r.t()
    x = torch.cat([e_u, e_i])
    out, layer = alpha[0] * x, x
    for k in range(1, len(alpha)):
        layer = a @ layer
        out = out + alpha[k] * layer
    return out[:U], out[U:]


@pytest.mark.parametrize("layers,alpha", [(0, None), (1, None), (3, None), (2, (0.5, 0.0, 2.0))])
def test_lightgcn_encoder_matches_closed_form(layers, alpha):
    enc = LightGCNEncoder(U, I, dim=6, num_layers=layers, alpha=alpha).double()
    data = _graph()
    out = enc(data)
    a = enc.alpha if alpha is None else torch.tensor(alpha, dtype=torch.float64)
    want_u, want_i = dense_lightgcn(enc.user_emb.weight, enc.item_emb.weight, dense_rhat(), a)
    torch.testing.assert_close(out.user, want_u)
    torch.testing.assert_close(out.item, want_i)
    sub = enc(data, users=torch.tensor([3, 0, 3]))
    torch.testing.assert_close(sub.user, want_u[[3, 0, 3]])
    if layers and alpha is None:  # isolated user 4 keeps only alpha_0 * its own embedding
        torch.testing.assert_close(out.user[4], enc.user_emb.weight[4] / (layers + 1))


def test_lightgcn_gradients_and_ego_regularisation():
    enc = LightGCNEncoder(U, I, dim=3, num_layers=2).double()
    data = _graph()

    def f(wu, wi):
        return dense_lightgcn(wu, wi, dense_rhat(), enc.alpha)

    wu, wi = enc.user_emb.weight.detach().clone(), enc.item_emb.weight.detach().clone()
    out = enc(data)
    (out.user.pow(2).sum() + out.item.sum()).backward()
    wu.requires_grad_(), wi.requires_grad_()
    ru, ri = f(wu, wi)
    (ru.pow(2).sum() + ri.sum()).backward()
    torch.testing.assert_close(enc.user_emb.weight.grad, wu.grad)
    torch.testing.assert_close(enc.item_emb.weight.grad, wi.grad)
    users, pos = torch.tensor([0, 2]), torch.tensor([1, 0])
    reg = enc.reg_embeddings(out, users, pos)
    torch.testing.assert_close(reg[0], enc.user_emb.weight[users])  # layer-0 rows, not the outputs
    torch.testing.assert_close(reg[1], enc.item_emb.weight[pos])


def test_lightgcn_edge_weights_are_opt_in():
    w = torch.tensor([1.0, 2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 0.5])
    data = _graph(weight=w)
    plain = LightGCNEncoder(U, I, dim=4, num_layers=1).double()
    weighted = LightGCNEncoder(U, I, dim=4, num_layers=1, use_edge_weight=True).double()
    weighted.load_state_dict(plain.state_dict())
    a = plain.alpha
    torch.testing.assert_close(plain(data).user, dense_lightgcn(plain.user_emb.weight, plain.item_emb.weight,
                                                                dense_rhat(), a)[0])
    torch.testing.assert_close(weighted(data).user, dense_lightgcn(plain.user_emb.weight, plain.item_emb.weight,
                                                                   dense_rhat(weight=w), a)[0])


def test_lightgcn_rejects_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        LightGCNEncoder(U, I, num_layers=2, alpha=(1.0, 1.0))
    with pytest.raises(ValueError, match="num_layers"):
        LightGCNEncoder(U, I, num_layers=-1)
    with pytest.raises(ValueError, match="users x"):
        LightGCNEncoder(U + 1, I)(_graph())
    assert "alpha" in LightGCNEncoder(U, I).state_dict()


@pytest.mark.parametrize("restrict", [1.0, 0.0])  # always filter the last layer's rows / never
@pytest.mark.parametrize("layers", [0, 1, 2, 3, 4])
def test_layer_sum_propagate_matches_dense_and_gradcheck(layers, restrict, monkeypatch):
    import graphcf.nn.sparse as sparse
    from graphcf.nn.sparse import layer_sum_propagate

    monkeypatch.setattr(sparse, "_RESTRICT_MAX_FRACTION", restrict)

    g = torch.Generator().manual_seed(layers)
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    xu = torch.randn(U, 3, dtype=torch.float64, generator=g, requires_grad=True)
    xi = torch.randn(I, 3, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.rand(layers + 1, generator=g, dtype=torch.float64)
    want_u, want_i = dense_lightgcn(xu, xi, dense_rhat(), alpha)
    out_u, out_i = layer_sum_propagate(adj, xu, xi, alpha)
    torch.testing.assert_close(out_u, want_u)
    torch.testing.assert_close(out_i, want_i)
    # rows only (repeats, any order, isolated user 4 / item 3): equal to gathering the full result
    users, items = torch.tensor([4, 0, 2, 0]), torch.tensor([3, 1, 1, 0, 2])
    row_u, row_i = layer_sum_propagate(adj, xu, xi, alpha, users=users, items=items)
    torch.testing.assert_close(row_u, want_u[users])
    torch.testing.assert_close(row_i, want_i[items])
    # gradients of both paths against autograd through the dense reference
    w_u, w_i = torch.randn(len(users), 3, dtype=torch.float64, generator=g), torch.randn(len(items), 3,
                                                                                         dtype=torch.float64, generator=g)
    for path in ("full", "rows"):
        xu.grad = xi.grad = None
        if path == "full":
            a, b = layer_sum_propagate(adj, xu, xi, alpha)
            a, b = a[users], b[items]
        else:
            a, b = layer_sum_propagate(adj, xu, xi, alpha, users=users, items=items)
        ((a * w_u).sum() + (b * w_i).sum()).backward()
        got = (xu.grad.clone(), xi.grad.clone())
        xu.grad = xi.grad = None
        ru, ri = dense_lightgcn(xu, xi, dense_rhat(), alpha)
        ((ru[users] * w_u).sum() + (ri[items] * w_i).sum()).backward()
        torch.testing.assert_close(got[0], xu.grad)
        torch.testing.assert_close(got[1], xi.grad)
    assert torch.autograd.gradcheck(
        lambda a, b: layer_sum_propagate(adj, a, b, alpha, users=users, items=items), (xu, xi))


def test_layer_sum_propagate_rejects_bad_arguments():
    from graphcf.nn.sparse import layer_sum_propagate

    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I)
    xu, xi = torch.randn(U, 2), torch.randn(I, 2)
    with pytest.raises(ValueError, match="alpha"):
        layer_sum_propagate(adj, xu, xi, [])
    with pytest.raises(ValueError, match="do not match"):
        layer_sum_propagate(adj, xi, xu, [0.5, 0.5])
    with pytest.raises(ValueError, match="both"):
        layer_sum_propagate(adj, xu, xi, [0.5, 0.5], users=torch.tensor([0]))
    with pytest.raises(IndexError, match="items out of range"):
        layer_sum_propagate(adj, xu, xi, [0.5, 0.5], users=torch.tensor([0]), items=torch.tensor([I]))


def test_lightgcn_embed_rows_equals_forward_and_layer_path():
    enc = LightGCNEncoder(U, I, dim=4, num_layers=3).double()
    data = _graph()
    full = enc(data)
    users, items = torch.tensor([1, 1, 3]), torch.tensor([2, 0, 2, 3])
    rows = enc.embed_rows(data, users, items)
    torch.testing.assert_close(rows.user, full.user[users])
    torch.testing.assert_close(rows.item, full.item[items])
    layer_u, layer_i = enc.propagate(enc.adjacency(data), enc.user_emb.weight, enc.item_emb.weight, fused=False)
    torch.testing.assert_close(layer_u, full.user)
    torch.testing.assert_close(layer_i, full.item)
