"""graphcf.nn.functional: gather_dot against the gathered dense formula (values and gradients,
float64), across chunk boundaries and with repeated indices."""
import pytest
import torch

import graphcf.nn.functional as fn
from graphcf.nn.functional import gather_dot


def _case(na=7, nb=11, d=5, r=13, m=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(na, d, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(nb, d, generator=g, dtype=torch.float64, requires_grad=True)
    ia = torch.randint(na, (r,), generator=g)
    ib = torch.randint(nb, (r, m), generator=g)
    return a, b, ia, ib


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])  # one row per chunk, ragged chunks, one chunk
def test_gather_dot_matches_gathered_formula(monkeypatch, chunk):
    monkeypatch.setattr(fn, "CHUNK_ELEMENTS", chunk)
    a, b, ia, ib = _case()
    got = gather_dot(a, b, ia, ib)
    want = (a[ia].unsqueeze(1) * b[ib]).sum(-1)
    assert got.shape == (13, 4)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    w = torch.randn(13, 4, dtype=torch.float64)
    ga, gb = torch.autograd.grad((got * w).sum(), (a, b))
    wa, wb = torch.autograd.grad((want * w).sum(), (a, b))
    torch.testing.assert_close(ga, wa, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gb, wb, rtol=1e-12, atol=1e-12)
    # a hand-worked entry: row 0, column 2
    assert float(got[0, 2].detach()) == pytest.approx(float(a[ia[0]] @ b[ib[0, 2]]))


def test_gather_dot_gradcheck_and_repeats(monkeypatch):
    monkeypatch.setattr(fn, "CHUNK_ELEMENTS", 6)
    a, b, _, _ = _case(na=3, nb=4, d=2)
    ia = torch.tensor([0, 0, 2, 0])  # repeated rows must sum their gradients
    ib = torch.tensor([[1, 1], [3, 0], [1, 2], [0, 0]])
    assert torch.autograd.gradcheck(lambda x, y: gather_dot(x, y, ia, ib), (a, b))
    ga, = torch.autograd.grad(gather_dot(a, b, ia, ib).sum(), a)
    # d/da_0 of the sum = b1 + b1 + b3 + b0 + b0 + b0; a_1 unused
    torch.testing.assert_close(ga[0], (2 * b[1] + b[3] + 3 * b[0]).detach())
    assert torch.count_nonzero(ga[1]) == 0


def test_gather_dot_one_dimensional_ib_and_one_side_grad():
    a, b, ia, ib = _case(m=1)
    got = gather_dot(a, b.detach(), ia, ib[:, 0])
    assert got.shape == (13,)
    torch.testing.assert_close(got.detach(), (a[ia] * b[ib[:, 0]]).sum(-1).detach(), rtol=1e-12, atol=1e-12)
    ga, = torch.autograd.grad(got.sum(), a)
    want = torch.zeros_like(a).index_add_(0, ia, b[ib[:, 0]].detach())
    torch.testing.assert_close(ga, want)


def test_gather_dot_errors_name_the_shapes():
    a, b, ia, ib = _case()
    with pytest.raises(ValueError, match=r"gather_dot: a and b must be \[N, d\] with the same d, got \(7, 5\) and \(11, 4\)"):
        gather_dot(a, b[:, :4], ia, ib)
    with pytest.raises(ValueError, match=r"ia must be \[R\] and ib \[R\] or \[R, M\], got \(12,\) and \(13, 4\)"):
        gather_dot(a, b, ia[:12], ib)
    with pytest.raises(ValueError, match="share a dtype"):
        gather_dot(a, b.float(), ia, ib)


def test_take_rows_copies_only_when_needed():
    from graphcf.nn.functional import take_rows
    rows = torch.arange(12.0).view(4, 3)
    assert take_rows(rows, torch.arange(4)) is rows  # sorted unique ids: the rows themselves
    for inv in (torch.tensor([0, 2, 2, 1]), torch.tensor([1, 0, 2, 3]), torch.arange(3), torch.arange(4).view(2, 2)):
        got = take_rows(rows, inv)
        assert got is not rows
        torch.testing.assert_close(got, rows[inv])


def test_weighted_degree_and_csr_row_ids_match_a_dense_matrix():
    from graphcf.nn.sparse import csr_row_ids, weighted_degree

    dense = torch.tensor([[0.0, 2.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.0, 3.0], [0.0, 4.0, 0.0]], dtype=torch.float64)
    csr = dense.to_sparse_csr()
    rows = csr_row_ids(csr)
    assert rows.tolist() == dense.nonzero()[:, 0].tolist()  # row-major order, the empty row skipped
    assert torch.equal(weighted_degree(rows, csr.values(), 4), dense.sum(1))
    assert torch.equal(weighted_degree(csr.col_indices().long(), csr.values(), 3), dense.sum(0))
    assert weighted_degree(rows[:0], csr.values()[:0], 2).tolist() == [0.0, 0.0]  # no edges: zeros
