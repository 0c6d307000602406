"""PinSAGEConv against a dense float64 reference (Ying et al. 2018, Algorithm 1)."""
import torch
import torch.nn.functional as F

from graphcf.nn.conv import PinSAGEConv


def _dense(conv, x_src, x_dst, edge_index, w):
    """CONVOLVE written with a dense [N_dst, N_src] weight matrix."""
    a = torch.zeros(x_dst.size(0), x_src.size(0), dtype=x_src.dtype)
    a.index_put_((edge_index[1], edge_index[0]), w, accumulate=True)
    msg = torch.relu(x_src @ conv.lin_msg.weight.T + conv.lin_msg.bias)
    denom = a.sum(1, keepdim=True)
    pooled = torch.where(denom > 0, (a @ msg) / denom.clamp_min(1e-300), torch.zeros_like(a @ msg))
    out = torch.relu(torch.cat([x_dst, pooled], 1) @ conv.lin_out.weight.T + conv.lin_out.bias)
    return F.normalize(out, dim=-1)


def _case(seed=0):
    g = torch.Generator().manual_seed(seed)
    x_src = torch.randn(6, 4, generator=g, dtype=torch.float64)
    x_dst = torch.randn(4, 4, generator=g, dtype=torch.float64)
    # target 3 has no neighbours; target 0 has the same neighbour twice (weights add up)
    edge_index = torch.tensor([[0, 1, 2, 2, 4, 5, 5, 0], [0, 0, 1, 2, 2, 1, 0, 0]])
    w = torch.rand(edge_index.size(1), generator=g, dtype=torch.float64) + 0.1
    return x_src, x_dst, edge_index, w


def test_matches_dense_reference_bipartite():
    torch.manual_seed(0)
    conv = PinSAGEConv((4, 4), 5, hidden_channels=3).double()
    x_src, x_dst, ei, w = _case()
    got = conv((x_src, x_dst), ei, w)
    want = _dense(conv, x_src, x_dst, ei, w)
    torch.testing.assert_close(got, want)
    assert got.shape == (4, 5)
    # unit norm rows (where the ReLU output is not all zero)
    norms = got.norm(dim=1)
    assert torch.all((norms - 1).abs() < 1e-9) or torch.all((norms < 1e-12) | ((norms - 1).abs() < 1e-9))


def test_importance_weights_matter_and_scale_invariance():
    torch.manual_seed(1)
    conv = PinSAGEConv(4, 4).double()
    x_src, x_dst, ei, w = _case(1)
    a = conv((x_src, x_dst), ei, w)
    # weighted *mean*: scaling all weights of a target changes nothing
    torch.testing.assert_close(conv((x_src, x_dst), ei, 7.0 * w), a)
    # but reweighting neighbours does
    w2 = w.clone()
    w2[0] *= 10
    assert not torch.allclose(conv((x_src, x_dst), ei, w2)[0], a[0])
    # no weights = plain mean = equal weights
    torch.testing.assert_close(conv((x_src, x_dst), ei), conv((x_src, x_dst), ei, torch.ones_like(w)))


def test_edge_permutation_invariance_and_homogeneous_input():
    torch.manual_seed(2)
    conv = PinSAGEConv(4, 3).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    ei = torch.tensor([[1, 2, 3, 4, 5, 0], [0, 0, 1, 2, 2, 5]])
    w = torch.rand(6, dtype=torch.float64)
    perm = torch.randperm(6)
    torch.testing.assert_close(conv(x, ei, w), conv(x, ei[:, perm], w[perm]))
    torch.testing.assert_close(conv(x, ei, w), _dense(conv, x, x, ei, w))


def test_gradcheck():
    torch.manual_seed(3)
    conv = PinSAGEConv((4, 4), 3, hidden_channels=5).double()
    x_src, x_dst, ei, w = _case(3)
    x_src.requires_grad_()
    x_dst.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: conv((a, b), ei, w), (x_src, x_dst))


def test_errors_and_repr():
    conv = PinSAGEConv(4, 8, hidden_channels=16)
    assert repr(conv) == "PinSAGEConv(4, 8, hidden_channels=16, normalize=True)"
    x = torch.randn(3, 4)
    import pytest

    with pytest.raises(ValueError, match="edge_weight"):
        conv(x, torch.tensor([[0, 1], [1, 2]]), torch.ones(3))
    with pytest.raises(ValueError, match="edge_index"):
        conv(x, torch.tensor([0, 1]))


def test_sparse_adjacency_path_matches_edge_index_path():
    torch.manual_seed(4)
    conv = PinSAGEConv((4, 4), 5, hidden_channels=3).double()
    x_src, x_dst, ei, w = _case(4)
    adj = torch.sparse_coo_tensor(torch.stack([ei[1], ei[0]]), w, (4, 6)).coalesce()
    a, a_t = adj.to_sparse_csr(), adj.t().coalesce().to_sparse_csr()
    ref = conv((x_src, x_dst), ei, w)
    torch.testing.assert_close(conv((x_src, x_dst), a), ref)
    xs = x_src.clone().requires_grad_()
    out = conv((xs, x_dst), a, transpose=a_t)
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    xs2 = x_src.clone().requires_grad_()
    conv((xs2, x_dst), ei, w).sum().backward()
    torch.testing.assert_close(xs.grad, xs2.grad)
