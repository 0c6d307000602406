r"""Sparse adjacency of the bipartite user-item graph, and the sparse product used by graph layers.

The normalised interaction matrix of LightGCN / NGCF (He et al. 2020, Wang et al. 2019) is

.. math::
    \hat{\mathbf{R}}_{ui} = \frac{w_{ui}}{\sqrt{d_u\, d_i}}, \qquad
    d_u = \sum_{i} w_{ui}, \quad d_i = \sum_{u} w_{ui}

(:math:`w_{ui} = 1` for implicit feedback, so :math:`d` are the degrees :math:`|\mathcal{N}|`).
One propagation step is :math:`\mathbf{E}_U' = \hat{\mathbf{R}} \mathbf{E}_I`,
:math:`\mathbf{E}_I' = \hat{\mathbf{R}}^\top \mathbf{E}_U` - the two off-diagonal blocks of
:math:`\mathbf{D}^{-1/2} \mathbf{A} \mathbf{D}^{-1/2}` for
:math:`\mathbf{A} = \begin{pmatrix} 0 & \mathbf{R} \\ \mathbf{R}^\top & 0 \end{pmatrix}`, without
ever building the :math:`(U + I)^2` block matrix or offsetting item ids by :math:`U`.

:class:`BipartiteAdjacency` keeps :math:`\hat{\mathbf{R}}` and :math:`\hat{\mathbf{R}}^\top` as
torch sparse CSR matrices; :func:`spmm` multiplies with one and back-propagates with the other
(the transpose is built once, not on every backward pass: 2x faster on Gowalla than
``torch.sparse.mm``'s own backward, measured on this project's 2-core CPU).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import torch
from torch import Tensor

from graphcf.nn.functional import take_rows

__all__ = ["weighted_degree", "csr_row_ids", "bipartite_sym_norm", "BipartiteAdjacency", "spmm", "layer_sum_propagate", "csr_row_positions", "AdjacencyCache"]


def weighted_degree(index: Tensor, weight: Tensor, num_nodes: int) -> Tensor:
    r""":math:`d_n = \sum_{e:\,\mathrm{index}_e = n} w_e` for ``n < num_nodes`` (``[num_nodes]``, ``weight``'s dtype):
    the (weighted) degree of each node from the endpoint ``index [E]`` of its edges."""
    return weight.new_zeros(num_nodes).index_add_(0, index, weight)


def csr_row_ids(a: Tensor) -> Tensor:
    """The row index of each stored entry of the CSR tensor ``a`` (``[nnz]``, int64), i.e. its COO rows."""
    crow = a.crow_indices().long()
    return torch.repeat_interleave(torch.arange(a.shape[0], device=crow.device), crow.diff(),
                                   output_size=a.values().numel())


def bipartite_sym_norm(edge_index: Tensor, edge_weight: Optional[Tensor], size: Tuple[int, int],
                       dtype: Optional[torch.dtype] = None) -> Tensor:
    r"""Symmetric normalisation :math:`w_{st} / \sqrt{d_s d_t}` of the edges ``s -> t`` of a bipartite graph.

    Degrees are (weighted) edge counts on each side; a node without edges has degree 0 and
    never appears in ``edge_index``, so no division by zero occurs.

    Args:
        edge_index: ``[2, E]`` (source row 0, target row 1).
        edge_weight: ``[E]`` or ``None`` (all ones).
        size: ``(num_src, num_dst)``.
        dtype: dtype of the result (default: ``edge_weight``'s if floating, else the default dtype).

    Returns:
        ``[E]`` normalised weights.
    """
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"bipartite_sym_norm: edge_index must be [2, E], got {tuple(edge_index.shape)}")
    src, dst = edge_index[0], edge_index[1]
    if edge_weight is None:
        edge_weight = torch.ones(src.numel(), device=src.device, dtype=dtype)
    elif edge_weight.shape != src.shape:
        raise ValueError(f"bipartite_sym_norm: edge_weight must be [{src.numel()}], got {tuple(edge_weight.shape)}")
    if dtype is None:
        dtype = edge_weight.dtype if edge_weight.is_floating_point() else torch.get_default_dtype()
    w = edge_weight.to(dtype)
    return w * (weighted_degree(src, w, size[0])[src] * weighted_degree(dst, w, size[1])[dst]).rsqrt()


def _mm(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` for a sparse CSR ``a`` into a fresh output: ``addmm(out=, beta=0)`` skips the
    zero-fill and the result copy that ``torch.mm`` / ``torch.sparse.mm`` do around the MKL
    kernel (30-40% faster per product on Gowalla, measured on this project's CPU). Elsewhere (CUDA,
    MPS) the portable ``torch.sparse.mm``."""
    if a.layout != torch.sparse_csr or x.dim() != 2 or a.device.type != "cpu":
        return torch.sparse.mm(a, x)
    out = x.new_empty(a.shape[0], x.shape[1])
    return torch.addmm(out, a, x, beta=0, out=out)


class _SpMM(torch.autograd.Function):
    """``a @ x`` with the backward ``a_t @ grad`` (``a``, ``a_t``: constant sparse CSR matrices)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return _mm(a, x.contiguous())

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, _mm(ctx.a_t, grad.contiguous())


def spmm(a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:
    r"""Sparse-dense product :math:`\mathbf{A}\mathbf{X}` whose backward uses the given transpose.

    Args:
        a: ``[M, N]`` torch sparse (CSR) matrix; its values are constants (no gradient).
        a_t: ``[N, M]``, the transpose of ``a`` (same layout).
        x: ``[N, F]`` dense.
    """
    if a.shape[1] != x.shape[0] or tuple(a_t.shape) != (a.shape[1], a.shape[0]):
        raise ValueError(f"spmm: shapes a {tuple(a.shape)}, a_t {tuple(a_t.shape)}, x {tuple(x.shape)} do not match")
    if x.dtype != a.dtype:  # e.g. under bf16 autocast: propagate in the adjacency's precision
        x = x.to(a.dtype)
    return _SpMM.apply(a, a_t, x)


class _LayerSum(torch.autograd.Function):
    r"""Fused :math:`\sum_k \alpha_k \mathbf{M}^k \mathbf{x}` with a Horner-scheme backward (see
    :func:`layer_sum_propagate`)."""

    @staticmethod
    def forward(ctx: Any, r: Tensor, r_t: Tensor, alpha: Tuple[float, ...], x_user: Tensor,
                x_item: Tensor) -> Tuple[Tensor, Tensor]:  # type: ignore[override]
        ctx.r, ctx.r_t, ctx.alpha = r, r_t, alpha
        out_u, out_i = x_user * alpha[0], x_item * alpha[0]
        h_u, h_i = x_user, x_item
        for a in alpha[1:]:
            h_u, h_i = _mm(r, h_i), _mm(r_t, h_u)
            out_u.add_(h_u, alpha=a)
            out_i.add_(h_i, alpha=a)
        return out_u, out_i

    @staticmethod
    def backward(ctx: Any, g_u: Tensor, g_i: Tensor):  # type: ignore[override]
        r, r_t, alpha = ctx.r, ctx.r_t, ctx.alpha
        g_u, g_i = g_u.contiguous(), g_i.contiguous()
        h_u, h_i = g_u * alpha[-1], g_i * alpha[-1]
        for a in reversed(alpha[:-1]):
            # M is the symmetric block matrix [[0, R], [R^T, 0]]: M^T = M
            h_u, h_i = _mm(r, h_i).add_(g_u, alpha=a), _mm(r_t, h_u).add_(g_i, alpha=a)
        return None, None, None, h_u, h_i


def _filter_csr(a: Tensor, keep: Tensor, col: Optional[Tensor] = None,
                num_cols: Optional[int] = None) -> Tensor:
    """The CSR ``a`` with only the entries where ``keep [nnz]`` is true (same rows); columns
    renumbered to ``col[keep]`` and ``num_cols`` if given."""
    ck = torch.zeros(keep.numel() + 1, dtype=torch.long, device=keep.device)
    torch.cumsum(keep, 0, out=ck[1:])
    col = a.col_indices() if col is None else col
    shape = (a.shape[0], a.shape[1] if num_cols is None else num_cols)
    return _csr_tensor(ck[a.crow_indices().long()], col[keep], a.values()[keep], shape)


#: above this fraction of selected columns the backward of the row-restricted last layer uses
#: the whole matrix (the result is the same: the unselected gradient rows are zero); filtering
#: would cost more than it saves
_RESTRICT_MAX_FRACTION = 0.5


def _restricted_cols(a: Tensor, selected: Tensor) -> Tensor:
    """``a`` with only the entries of the columns flagged in ``selected`` (bool)."""
    if selected.numel() == 0 or float(selected.sum()) > _RESTRICT_MAX_FRACTION * selected.numel():
        return a
    return _filter_csr(a, _keep_cols(a, selected))


def _keep_cols(a: Tensor, selected: Tensor) -> Tensor:
    """Entry mask of the columns of CSR ``a`` flagged in ``selected [cols]`` (bool)."""
    return selected[a.col_indices().long()]


class _LayerSumRows(torch.autograd.Function):
    r""":class:`_LayerSum` evaluated only at the rows ``users`` / ``items``: the last layer is a
    product with the rows' sub-matrix only (see :func:`layer_sum_propagate`)."""

    @staticmethod
    def forward(ctx: Any, r: Tensor, r_t: Tensor, alpha: Tuple[float, ...], users: Tensor, items: Tensor,
                x_user: Tensor, x_item: Tensor) -> Tuple[Tensor, Tensor]:  # type: ignore[override]
        sel_u = torch.zeros(r.shape[0], dtype=torch.bool, device=users.device).index_fill_(0, users, True)
        sel_i = torch.zeros(r.shape[1], dtype=torch.bool, device=items.device).index_fill_(0, items, True)
        out_u, out_i = x_user[users] * alpha[0], x_item[items] * alpha[0]
        h_u, h_i = x_user, x_item
        for a in alpha[1:-1]:
            h_u, h_i = _mm(r, h_i), _mm(r_t, h_u)
            out_u.add_(h_u[users], alpha=a)
            out_i.add_(h_i[items], alpha=a)
        if len(alpha) > 1:  # last layer: only the selected rows of R and R^T
            out_u.add_(_mm(_rows_csr(r, users), h_i), alpha=alpha[-1])
            out_i.add_(_mm(_rows_csr(r_t, items), h_u), alpha=alpha[-1])
        ctx.r, ctx.r_t, ctx.alpha = r, r_t, alpha
        ctx.sel_u, ctx.sel_i = sel_u, sel_i
        ctx.save_for_backward(users, items)
        return out_u, out_i

    @staticmethod
    def backward(ctx: Any, g_u_rows: Tensor, g_i_rows: Tensor):  # type: ignore[override]
        r, r_t, alpha = ctx.r, ctx.r_t, ctx.alpha
        users, items = ctx.saved_tensors
        g_u = g_u_rows.new_zeros(r.shape[0], g_u_rows.shape[1]).index_copy_(0, users, g_u_rows)
        g_i = g_i_rows.new_zeros(r.shape[1], g_i_rows.shape[1]).index_copy_(0, items, g_i_rows)
        if len(alpha) == 1:
            return None, None, None, None, None, g_u * alpha[0], g_i * alpha[0]
        # transpose of the last layer's row-restricted products: (R[users, :])^T = R^T[:, users]
        h_u = _mm(_restricted_cols(r, ctx.sel_i), g_i).mul_(alpha[-1]).add_(g_u, alpha=alpha[-2])
        h_i = _mm(_restricted_cols(r_t, ctx.sel_u), g_u).mul_(alpha[-1]).add_(g_i, alpha=alpha[-2])
        for a in reversed(alpha[:-2]):
            h_u, h_i = _mm(r, h_i).add_(g_u, alpha=a), _mm(r_t, h_u).add_(g_i, alpha=a)
        return None, None, None, None, None, h_u, h_i


def layer_sum_propagate(adj: "BipartiteAdjacency", x_user: Tensor, x_item: Tensor, alpha,
                        users: Optional[Tensor] = None, items: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""LightGCN's whole propagation as one autograd node: :math:`\sum_{k=0}^{K} \alpha_k \mathbf{M}^k \mathbf{x}`.

    With :math:`\mathbf{M} = \begin{pmatrix} 0 & \hat{\mathbf{R}} \\ \hat{\mathbf{R}}^\top & 0 \end{pmatrix}`
    and :math:`\mathbf{x} = (\mathbf{E}_U, \mathbf{E}_I)`, returns the :math:`\alpha`-weighted
    layer sum ``(users [U, d], items [I, d])``. Because :math:`\mathbf{M}` is symmetric the
    gradient is the same polynomial applied to the output gradient :math:`\mathbf{g}`, evaluated
    by Horner's scheme,

    .. math::
        \mathbf{h}_K = \alpha_K \mathbf{g}, \qquad
        \mathbf{h}_{k} = \alpha_{k} \mathbf{g} + \mathbf{M} \mathbf{h}_{k+1}, \qquad
        \frac{\partial \mathcal{L}}{\partial \mathbf{x}} = \mathbf{h}_0,

    so forward and backward cost :math:`K` sparse products each, and no layer output is kept
    for the backward pass (autograd through :math:`K` separate layers keeps all of them and
    materialises every :math:`\alpha_k`-scaled copy: measured slower on this project's CPU).

    Args:
        adj: the normalised adjacency; its values are constants (no gradient).
        x_user, x_item: layer-0 embeddings ``[U, d]``, ``[I, d]``.
        alpha: :math:`\alpha_0..\alpha_K` (floats or a 1-D tensor).
        users, items: if given (both), return only these rows, ``([len(users), d], [len(items), d])``
            in the given order. Layers :math:`1..K-1` still run on the whole graph, but layer
            :math:`K` multiplies only the selected rows of :math:`\hat{\mathbf{R}}` and
            :math:`\hat{\mathbf{R}}^\top` (and its backward only their transposes): a training
            step needs the final embeddings of its batch rows only, so for :math:`K = 3` this
            saves about one full-graph product forward and one backward.
    """
    alpha_t = tuple(float(a) for a in (alpha.tolist() if isinstance(alpha, Tensor) else alpha))
    if not alpha_t:
        raise ValueError("layer_sum_propagate: alpha needs at least one weight (alpha_0)")
    r, r_t = adj.user_from_item, adj.item_from_user
    if tuple(x_user.shape[:1]) != (r.shape[0],) or tuple(x_item.shape[:1]) != (r.shape[1],):
        raise ValueError(f"layer_sum_propagate: x_user {tuple(x_user.shape)} / x_item {tuple(x_item.shape)} "
                         f"do not match the adjacency's {r.shape[0]} users x {r.shape[1]} items")
    if x_user.dtype != r.dtype:  # e.g. under bf16 autocast: propagate in the adjacency's precision
        x_user, x_item = x_user.to(r.dtype), x_item.to(r.dtype)
    if (users is None) != (items is None):
        raise ValueError("layer_sum_propagate: give both users and items (or neither)")
    if users is None:
        return _LayerSum.apply(r, r_t, alpha_t, x_user.contiguous(), x_item.contiguous())
    users, items = users.reshape(-1).long(), items.reshape(-1).long()
    for name, idx, n in (("users", users, r.shape[0]), ("items", items, r.shape[1])):
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise IndexError(f"layer_sum_propagate: {name} out of range [0, {n})")
    # unique rows: index_copy_ in the backward needs them, and each row is computed once
    uu, inv_u = torch.unique(users, return_inverse=True)
    ui, inv_i = torch.unique(items, return_inverse=True)
    out_u, out_i = _LayerSumRows.apply(r, r_t, alpha_t, uu, ui, x_user.contiguous(), x_item.contiguous())
    return take_rows(out_u, inv_u), take_rows(out_i, inv_i)


@dataclass
class BipartiteAdjacency:
    r"""Normalised :math:`\hat{\mathbf{R}}` ``[U, I]`` and :math:`\hat{\mathbf{R}}^\top` ``[I, U]`` as CSR.

    ``user_from_item`` aggregates item rows into users (``E_U' = R_hat @ E_I``), and
    ``item_from_user`` the reverse. ``perm`` maps the first matrix's value order to the
    second's (``item_from_user.values() == user_from_item.values()[perm]``). Build with
    :meth:`from_edge_index`.
    """

    user_from_item: Tensor
    item_from_user: Tensor
    perm: Tensor

    @property
    def num_users(self) -> int:
        return int(self.user_from_item.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.user_from_item.shape[1])

    @property
    def num_edges(self) -> int:
        return int(self.user_from_item.values().numel())

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_users: int, num_items: int,
                        edge_weight: Optional[Tensor] = None, normalize: bool = True,
                        dtype: torch.dtype = torch.float32) -> "BipartiteAdjacency":
        """From ``edge_index [2, E]`` (row 0 users, row 1 items); duplicate edges add their weights."""
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"BipartiteAdjacency: edge_index must be [2, E], got {tuple(edge_index.shape)}")
        ei = edge_index.long()
        if ei.numel() and (int(ei[0].min()) < 0 or int(ei[0].max()) >= num_users
                           or int(ei[1].min()) < 0 or int(ei[1].max()) >= num_items):
            raise IndexError(f"BipartiteAdjacency: edge_index out of range for {num_users} users x {num_items} items")
        w = torch.ones(ei.size(1), device=ei.device, dtype=dtype) if edge_weight is None else edge_weight.to(dtype)
        coo = torch.sparse_coo_tensor(ei, w, (num_users, num_items), check_invariants=False).coalesce()
        (row, col), val = coo.indices(), coo.values()  # duplicates summed, sorted by (user, item)
        if normalize:
            val = bipartite_sym_norm(torch.stack([row, col]), val, (num_users, num_items), dtype=dtype)
        perm = torch.argsort(col * num_users + row, stable=True)
        crow = _crow(row, num_users)
        crow_t = _crow(col, num_items)
        return cls(_csr_tensor(crow, col, val, (num_users, num_items)),
                   _csr_tensor(crow_t, row[perm], val[perm], (num_items, num_users)), perm)

    def with_values(self, values: Tensor) -> "BipartiteAdjacency":
        """The same sparsity pattern with new values (in ``user_from_item``'s order)."""
        a = self.user_from_item
        t = self.item_from_user
        return BipartiteAdjacency(_csr_tensor(a.crow_indices(), a.col_indices(), values, tuple(a.shape)),
                                  _csr_tensor(t.crow_indices(), t.col_indices(), values[self.perm], tuple(t.shape)),
                                  self.perm)

    def dropout_edges(self, p: float, generator: Optional[torch.Generator] = None) -> "BipartiteAdjacency":
        r"""Drop each interaction (both directions) with probability ``p`` and rescale the kept
        values by :math:`1/(1-p)` (NGCF's "node dropout", which its code applies to the
        normalised adjacency's entries)."""
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout_edges: p must be in [0, 1), got {p}")
        val = self.user_from_item.values()
        if p == 0.0:
            return self
        keep = torch.rand(val.numel(), generator=generator, device=val.device) >= p
        return self.with_values(val * keep.to(val.dtype) / (1.0 - p))

    def propagate(self, x_user: Tensor, x_item: Tensor) -> Tuple[Tensor, Tensor]:
        r"""One light-convolution step: :math:`(\hat{\mathbf{R}} \mathbf{E}_I, \hat{\mathbf{R}}^\top \mathbf{E}_U)`."""
        return (spmm(self.user_from_item, self.item_from_user, x_item),
                spmm(self.item_from_user, self.user_from_item, x_user))

    def row_blocks(self, users: Tensor, items: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""The rows ``users`` of :math:`\hat{\mathbf{R}}` and ``items`` of :math:`\hat{\mathbf{R}}^\top`, with transposes.

        For a layer evaluated at a few target rows only: returns ``(R[users] [Bu, I],
        R[users]^T [I, Bu], R^T[items] [Bi, U], R^T[items]^T [U, Bi])`` as CSR (the transposes for
        :func:`spmm`'s backward); ``users`` / ``items`` must be unique (row ``b`` of a block is
        ``users[b]``).
        """
        return (*self.user_rows(users), *self.item_rows(items))

    def user_rows(self, users: Tensor) -> Tuple[Tensor, Tensor]:
        r"""``(R[users] [Bu, I], R[users]^T [I, Bu])`` as CSR (``users`` unique), the first half of :meth:`row_blocks`."""
        return _row_block(self.user_from_item, self.item_from_user, users)

    def item_rows(self, items: Tensor) -> Tuple[Tensor, Tensor]:
        r"""``(R^T[items] [Bi, U], R^T[items]^T [U, Bi])`` as CSR (``items`` unique), the second half of :meth:`row_blocks`."""
        return _row_block(self.item_from_user, self.user_from_item, items)

    def to(self, device: torch.device) -> "BipartiteAdjacency":
        return BipartiteAdjacency(self.user_from_item.to(device), self.item_from_user.to(device), self.perm.to(device))


def csr_row_positions(row_ptr: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor]:
    """Where the entries of CSR rows ``rows`` are (vectorised): ``(local_row [nnz'], position [nnz'])``.

    ``local_row`` indexes ``rows`` (0..len(rows)-1), in row order; ``position`` indexes the CSR's
    ``col`` / ``values`` arrays.
    """
    rows = rows.long()
    row_ptr = row_ptr.long()
    start = row_ptr[rows]
    counts = row_ptr[rows + 1] - start
    total = int(counts.sum())
    local = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), counts, output_size=total)
    if total == 0:
        return local, local
    # position of each entry = start of its row + offset inside the row
    offset = torch.arange(total, device=rows.device) - torch.repeat_interleave(
        torch.cumsum(counts, 0) - counts, counts, output_size=total)
    return local, start[local] + offset


def _rows_csr(a: Tensor, rows: Tensor) -> Tensor:
    """``a[rows]`` ``[B, N]`` as CSR (cost proportional to the rows' entries, not to ``a``'s)."""
    local, idx = csr_row_positions(a.crow_indices(), rows)
    return _csr_tensor(_crow(local, rows.numel()), a.col_indices()[idx], a.values()[idx], (rows.numel(), a.shape[1]))


def _row_block(a: Tensor, a_t: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor]:
    """``(a[rows] [B, N], a[rows]^T [N, B])`` as CSR, from CSR ``a [M, N]`` and its transpose ``a_t``."""
    rows = rows.long()
    block = _rows_csr(a, rows)
    # the transpose: entries of a_t whose column is one of rows, columns renumbered 0..B-1
    renumber = torch.full((a.shape[0],), -1, dtype=torch.long, device=rows.device)
    renumber[rows] = torch.arange(rows.numel(), device=rows.device)
    col_t = renumber[a_t.col_indices().long()]
    return block, _filter_csr(a_t, col_t >= 0, col=col_t, num_cols=rows.numel())


def _crow(row: Tensor, n: int) -> Tensor:
    crow = torch.zeros(n + 1, dtype=torch.long, device=row.device)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=crow[1:])
    return crow


def _csr_tensor(crow: Tensor, col: Tensor, val: Tensor, shape: Tuple[int, ...]) -> Tensor:
    # int32 indices when they fit: the MKL kernel converts int64 indices on every product (CPU only)
    if val.device.type == "cpu" and max(val.numel(), *shape) < 2**31 - 1:
        crow, col = crow.to(torch.int32), col.to(torch.int32)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)


class AdjacencyCache:
    """Rebuilds a :class:`BipartiteAdjacency` only when the training graph changes.

    Keyed on the ``edge_index`` (and ``edge_weight``) tensor's storage, shape, stride,
    in-place version counter and device; the keyed tensors are kept alive so their
    memory cannot be reused by another tensor with the same address.
    """

    def __init__(self) -> None:
        self._key: Optional[Tuple[Any, ...]] = None
        self._alive: Tuple[Any, ...] = ()
        self._adj: Optional[BipartiteAdjacency] = None

    @staticmethod
    def _tensor_key(t: Optional[Tensor]) -> Tuple[Any, ...]:
        if t is None:
            return (None,)
        return (t.data_ptr(), tuple(t.shape), tuple(t.stride()), t._version, str(t.device), t.dtype)

    def get(self, edge_index: Tensor, num_users: int, num_items: int, edge_weight: Optional[Tensor] = None,
            normalize: bool = True, device: Optional[torch.device] = None,
            dtype: torch.dtype = torch.float32) -> BipartiteAdjacency:
        device = device or edge_index.device
        key = (self._tensor_key(edge_index), self._tensor_key(edge_weight), num_users, num_items, normalize,
               str(device), dtype)
        if self._adj is None or key != self._key:
            adj = BipartiteAdjacency.from_edge_index(edge_index.detach(), num_users, num_items,
                                                     None if edge_weight is None else edge_weight.detach(),
                                                     normalize=normalize, dtype=dtype)
            self._adj, self._key, self._alive = adj.to(device), key, (edge_index, edge_weight)
        return self._adj

    def clear(self) -> None:
        self._key, self._alive, self._adj = None, (), None
