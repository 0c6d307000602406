"""NGCFConv and NGCFEncoder against dense float64 algebra (eq. (3)-(4) and (7) of Wang et al. 2019)."""
import pytest
import torch
import torch.nn.functional as F

from graphcf.data import Interactions, to_heterodata
from graphcf.nn.conv import NGCFConv
from graphcf.nn.encoders import NGCFEncoder
from graphcf.nn.sparse import BipartiteAdjacency

U, I = 5, 4
EDGES = torch.tensor([[0, 0, 1, 1, 2, 3, 3, 3], [0, 1, 1, 2, 0, 0, 1, 2]])


def dense_rhat():
    r = torch.zeros(U, I, dtype=torch.float64)
    r[EDGES[0], EDGES[1]] = 1.0
    du, di = r.sum(1), r.sum(0)
    iu = torch.where(du > 0, du.rsqrt(), torch.zeros_like(du))
    ii = torch.where(di > 0, di.rsqrt(), torch.zeros_like(di))
    return iu[:, None] * r * ii[None, :]


def per_edge_reference(conv, x_src, x_dst, r):
    """The paper's message form, one message per edge: e_u' = LReLU(W1 e_u + sum_i p_ui (W1 e_i + W2 (e_i * e_u)))."""
    out = []
    for u in range(x_dst.size(0)):
        acc = conv.lin1(x_dst[u]) + conv.lin2.bias  # W1 e_u + b1, plus b2 of the W2 term
        for i in range(x_src.size(0)):
            if r[u, i] != 0:
                acc = acc + r[u, i] * (x_src[i] @ conv.lin1.weight.t() + (x_src[i] * x_dst[u]) @ conv.lin2.weight.t())
        out.append(F.leaky_relu(acc, 0.2))
    return torch.stack(out)


def test_ngcf_conv_matches_per_edge_messages_for_every_input_form():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    conv = NGCFConv(3, 2).double()
    with torch.no_grad():  # non-zero biases so they are checked too
        conv.lin1.bias.normal_(generator=g)
        conv.lin2.bias.normal_(generator=g)
    assert str(conv) == "NGCFConv(3, 2)"
    xu = torch.randn(U, 3, dtype=torch.float64, generator=g)
    xi = torch.randn(I, 3, dtype=torch.float64, generator=g)
    r = dense_rhat()
    want_u = per_edge_reference(conv, xi, xu, r)
    want_i = per_edge_reference(conv, xu, xi, r.t())
    torch.testing.assert_close(conv((xi, xu), EDGES.flip(0)), want_u)
    torch.testing.assert_close(conv((xu, xi), EDGES), want_i)
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    plain = NGCFConv(3, 2, normalize=False).double()
    plain.load_state_dict(conv.state_dict())
    torch.testing.assert_close(plain((xi, xu), adj.user_from_item, transpose=adj.item_from_user), want_u)
    torch.testing.assert_close(conv((xi, xu), torch.sparse_coo_tensor(EDGES, torch.ones(8, dtype=torch.float64),
                                                                      (U, I)).to_sparse_csr()), want_u)


def test_ngcf_conv_gradcheck():
    torch.manual_seed(0)
    conv = NGCFConv(3, 2).double()
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    xu = torch.randn(U, 3, dtype=torch.float64, requires_grad=True)
    xi = torch.randn(I, 3, dtype=torch.float64, requires_grad=True)
    plain = NGCFConv(3, 2, normalize=False).double()
    assert torch.autograd.gradcheck(
        lambda a, b: plain((a, b), adj.user_from_item, transpose=adj.item_from_user), (xi, xu))
    assert torch.autograd.gradcheck(lambda a, b: conv((a, b), EDGES.flip(0)), (xi, xu))


def _graph():
    return to_heterodata({"train": Interactions(EDGES[0], EDGES[1], U, I)})


def dense_ngcf(enc, normalize=True):
    """Eq. (7): E' = LReLU((L + I) E W1 + (L E) * E W2) on the (U + I) block Laplacian, then concat."""
    a = torch.zeros(U + I, U + I, dtype=torch.float64)
    a[:U, U:] = dense_rhat()
    a[U:, :U] = dense_rhat().t()
    e = torch.cat([enc.user_emb.weight, enc.item_emb.weight])
    outs = [e]
    for conv in enc.convs:
        side = a @ e
        e = F.leaky_relu(conv.lin1(e + side) + conv.lin2(side * e), 0.2)
        outs.append(F.normalize(e, dim=1) if normalize else e)
    out = torch.cat(outs, dim=1)
    return out[:U], out[U:]


@pytest.mark.parametrize("normalize", [True, False])
def test_ngcf_encoder_matches_dense_closed_form_in_eval_mode(normalize):
    torch.manual_seed(1)
    enc = NGCFEncoder(U, I, dim=4, layer_dims=(3, 5), mess_dropout=0.3, node_dropout=0.4,
                      normalize_layers=normalize).double().eval()
    out = enc(_graph())
    want_u, want_i = dense_ngcf(enc, normalize)
    assert out.user.shape == (U, 4 + 3 + 5) and enc.out_dim == 12
    torch.testing.assert_close(out.user, want_u)
    torch.testing.assert_close(out.item, want_i)
    torch.testing.assert_close(enc(_graph(), users=torch.tensor([2, 2])).user, want_u[[2, 2]])


def test_ngcf_dropouts_only_in_training_mode():
    torch.manual_seed(2)
    enc = NGCFEncoder(U, I, dim=4, layer_dims=(4,), mess_dropout=0.5, node_dropout=0.5).double()
    data = _graph()
    enc.eval()
    assert torch.equal(enc(data).user, enc(data).user)
    enc.train()
    torch.manual_seed(0)
    a = enc(data).user
    b = enc(data).user
    assert not torch.equal(a, b)
    torch.testing.assert_close(a[:, :4], enc.user_emb.weight)  # layer 0 is never dropped


def test_edge_dropout_is_unbiased_and_keeps_both_directions_consistent():
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    acc = torch.zeros(U, I, dtype=torch.float64)
    n = 4000
    for _ in range(n):
        d = adj.dropout_edges(0.3, generator=g)
        torch.testing.assert_close(d.item_from_user.to_dense(), d.user_from_item.to_dense().t())
        acc += d.user_from_item.to_dense()
    torch.testing.assert_close(acc / n, dense_rhat(), atol=0.02, rtol=0.0)
    with pytest.raises(ValueError, match="p must"):
        adj.dropout_edges(1.0)


def test_ngcf_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mess_dropout"):
        NGCFEncoder(U, I, layer_dims=(4, 4), mess_dropout=(0.1,))
    with pytest.raises(ValueError, match="node_dropout"):
        NGCFEncoder(U, I, node_dropout=1.0)
    with pytest.raises(ValueError, match="layer_dims"):
        NGCFEncoder(U, I, layer_dims=(0,))


def test_row_blocks_match_dense_rows():
    adj = BipartiteAdjacency.from_edge_index(EDGES, U, I, dtype=torch.float64)
    users, items = torch.tensor([0, 3, 4]), torch.tensor([1, 3])  # user 4 and item 3 have no edges
    r_u, r_u_t, r_i, r_i_t = adj.row_blocks(users, items)
    r = dense_rhat()
    torch.testing.assert_close(r_u.to_dense(), r[users])
    torch.testing.assert_close(r_u_t.to_dense(), r[users].t())
    torch.testing.assert_close(r_i.to_dense(), r.t()[items])
    torch.testing.assert_close(r_i_t.to_dense(), r.t()[items].t())


@pytest.mark.parametrize("variant", ["paper", "authors"])
@pytest.mark.parametrize("layers", [(3,), (3, 2), (4, 3, 2)])
def test_ngcf_embed_rows_equals_forward_values_and_gradients(layers, variant):
    torch.manual_seed(0)
    enc = NGCFEncoder(U, I, dim=3, layer_dims=layers, mess_dropout=0.3, variant=variant).double().eval()
    data = _graph()
    users, items = torch.tensor([3, 0, 3, 4]), torch.tensor([[2, 1], [2, 3], [0, 0], [1, 2]])
    full = enc(data)
    want_u, want_i = full.user[users], full.item[items]
    rows = enc.embed_rows(data, users, items)
    torch.testing.assert_close(rows.user, want_u)
    torch.testing.assert_close(rows.item, want_i)
    w_u, w_i = torch.randn_like(want_u), torch.randn_like(want_i)
    grads = []
    for out in ((want_u, want_i), (rows.user, rows.item)):
        enc.zero_grad()
        ((out[0] * w_u).sum() + (out[1] * w_i).sum()).backward(retain_graph=True)
        grads.append([p.grad.clone() for p in enc.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


# --- variant="authors": the layer of the authors' released code -------------------------------

def dense_self_mean():
    """(D + I)^-1 (A + I) on the (U + I) x (U + I) block adjacency, written out densely."""
    a = torch.zeros(U + I, U + I, dtype=torch.float64)
    a[EDGES[0], U + EDGES[1]] = 1.0
    a[U + EDGES[1], EDGES[0]] = 1.0
    a = a + torch.eye(U + I, dtype=torch.float64)
    return a / a.sum(1, keepdim=True)


def per_node_authors_reference(conv, x_src, x_dst, r):
    """s = (e_u + sum_{i in N(u)} e_i) / (|N(u)| + 1); out = LReLU(W1 s + b1) + LReLU(W2 (s * e_u) + b2), one node at a time."""
    out = []
    for u in range(x_dst.size(0)):
        nbrs = [i for i in range(x_src.size(0)) if r[u, i] != 0]
        s = (x_dst[u] + sum((x_src[i] for i in nbrs), torch.zeros_like(x_dst[u]))) / (len(nbrs) + 1)
        out.append(F.leaky_relu(conv.lin1(s), 0.2) + F.leaky_relu(conv.lin2(s * x_dst[u]), 0.2))
    return torch.stack(out)


def test_ngcf_conv_authors_variant_matches_per_node_reference_for_every_input_form():
    g = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    conv = NGCFConv(3, 2, variant="authors").double()
    with torch.no_grad():
        conv.lin1.bias.normal_(generator=g)
        conv.lin2.bias.normal_(generator=g)
    assert str(conv) == "NGCFConv(3, 2, variant='authors')"
    xu = torch.randn(U, 3, dtype=torch.float64, generator=g)
    xi = torch.randn(I, 3, dtype=torch.float64, generator=g)
    r = torch.zeros(U, I, dtype=torch.float64)
    r[EDGES[0], EDGES[1]] = 1.0
    want_u = per_node_authors_reference(conv, xi, xu, r)  # user 4 has no items: s = e_u
    want_i = per_node_authors_reference(conv, xu, xi, r.t())
    torch.testing.assert_close(conv((xi, xu), EDGES.flip(0)), want_u)
    torch.testing.assert_close(conv((xu, xi), EDGES), want_i)
    csr = torch.sparse_coo_tensor(EDGES, torch.ones(8, dtype=torch.float64), (U, I)).to_sparse_csr()
    torch.testing.assert_close(conv((xi, xu), csr), want_u)
    # normalize=False: the caller's mean weights and self weights, as the encoder passes them
    plain = NGCFConv(3, 2, normalize=False, variant="authors").double()
    plain.load_state_dict(conv.state_dict())
    du = r.sum(1)
    mean = (r / (du + 1)[:, None]).to_sparse_csr()
    torch.testing.assert_close(plain((xi, xu), mean, transpose=mean.t().to_sparse_csr(), self_weight=1 / (du + 1)),
                               want_u)
    with pytest.raises(ValueError, match="self_weight"):
        plain((xi, xu), mean)
    with pytest.raises(ValueError, match="self_weight goes with normalize=False"):
        conv((xi, xu), EDGES.flip(0), self_weight=1 / (du + 1))
    with pytest.raises(ValueError, match="self_weight is for variant='authors'"):
        NGCFConv(3, 2).double()((xi, xu), EDGES.flip(0), self_weight=1 / (du + 1))
    with pytest.raises(ValueError, match="variant"):
        NGCFConv(3, 2, variant="tf")


def test_ngcf_conv_authors_variant_gradcheck():
    torch.manual_seed(0)
    conv = NGCFConv(3, 2, variant="authors").double()
    xu = torch.randn(U, 3, dtype=torch.float64, requires_grad=True)
    xi = torch.randn(I, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: conv((a, b), EDGES.flip(0)), (xi, xu))
    enc = NGCFEncoder(U, I, dim=3, layer_dims=(3,), variant="authors").double().eval()
    adj_u, _, self_u, _ = enc.self_mean_adjacency(_graph())
    plain = enc.convs[0]
    assert torch.autograd.gradcheck(
        lambda a, b: plain((a, b), adj_u.user_from_item, transpose=adj_u.item_from_user, self_weight=self_u), (xi, xu))


def dense_ngcf_authors(enc):
    """The authors' code: side = (D+I)^-1 (A+I) E; E' = LReLU(side W1 + b1) + LReLU((side * E) W2 + b2); concat."""
    a = dense_self_mean()
    e = torch.cat([enc.user_emb.weight, enc.item_emb.weight])
    outs = [e]
    for conv in enc.convs:
        side = a @ e
        e = F.leaky_relu(conv.lin1(side), 0.2) + F.leaky_relu(conv.lin2(side * e), 0.2)
        outs.append(F.normalize(e, dim=1))
    out = torch.cat(outs, dim=1)
    return out[:U], out[U:]


def test_ngcf_encoder_authors_variant_matches_dense_closed_form_in_eval_mode():
    torch.manual_seed(4)
    enc = NGCFEncoder(U, I, dim=4, layer_dims=(3, 5), mess_dropout=0.3, node_dropout=0.4,
                      variant="authors").double().eval()
    assert "variant='authors'" in repr(enc)
    out = enc(_graph())
    want_u, want_i = dense_ngcf_authors(enc)
    torch.testing.assert_close(out.user, want_u)
    torch.testing.assert_close(out.item, want_i)
    # the variants differ (same weights, paper form)
    paper = NGCFEncoder(U, I, dim=4, layer_dims=(3, 5)).double().eval()
    paper.load_state_dict(enc.state_dict())
    assert not torch.allclose(paper(_graph()).user, out.user)
    with pytest.raises(ValueError, match="variant"):
        NGCFEncoder(U, I, variant="code")


def test_ngcf_authors_node_dropout_is_unbiased_per_direction_and_self_loop():
    """The training-mode matrices average to (D+I)^-1 (A+I) over draws; the two directions of an
    edge and the self-loops are dropped independently (the authors' single matrix holds each entry once)."""
    enc = NGCFEncoder(U, I, dim=2, layer_dims=(2,), node_dropout=0.5, variant="authors").double()
    data = _graph()
    want = dense_self_mean()
    enc.eval()
    adj_u, adj_i, self_u, self_i = enc.propagation_matrices(data)
    torch.testing.assert_close(adj_u.user_from_item.to_dense(), want[:U, U:])
    torch.testing.assert_close(adj_i.item_from_user.to_dense(), want[U:, :U])
    torch.testing.assert_close(torch.cat([self_u, self_i]), want.diagonal())
    enc.train()
    torch.manual_seed(0)
    n, same = 3000, 0
    acc = torch.zeros(U + I, U + I, dtype=torch.float64)
    for _ in range(n):
        adj_u, adj_i, self_u, self_i = enc.propagation_matrices(data)
        a_u, a_i = adj_u.user_from_item.to_dense(), adj_i.item_from_user.to_dense()
        acc[:U, U:] += a_u
        acc[U:, :U] += a_i
        acc += torch.diag(torch.cat([self_u, self_i]))
        same += int(torch.equal(a_u != 0, a_i.t() != 0))
    torch.testing.assert_close(acc / n, want, atol=0.03, rtol=0.0)
    assert same < n / 2  # separate masks: the two directions rarely agree on all 8 edges
    paper = NGCFEncoder(U, I, dim=2, layer_dims=(2,), node_dropout=0.5).double().train()
    for _ in range(20):  # the paper's form: one mask, both directions
        a, b, s_u, s_i = paper.propagation_matrices(data)
        assert a is b and s_u is None and s_i is None
