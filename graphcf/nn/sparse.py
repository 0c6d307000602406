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

__all__ = ["bipartite_sym_norm", "BipartiteAdjacency", "spmm", "AdjacencyCache"]


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
    deg_src = torch.zeros(size[0], dtype=w.dtype, device=w.device).index_add_(0, src, w)
    deg_dst = torch.zeros(size[1], dtype=w.dtype, device=w.device).index_add_(0, dst, w)
    return w * (deg_src[src] * deg_dst[dst]).rsqrt()


class _SpMM(torch.autograd.Function):
    """``a @ x`` with the backward ``a_t @ grad`` (``a``, ``a_t``: constant sparse CSR matrices)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, a_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, torch.sparse.mm(ctx.a_t, grad.contiguous())


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

    def to(self, device: torch.device) -> "BipartiteAdjacency":
        return BipartiteAdjacency(self.user_from_item.to(device), self.item_from_user.to(device), self.perm.to(device))


def _crow(row: Tensor, n: int) -> Tensor:
    crow = torch.zeros(n + 1, dtype=torch.long, device=row.device)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=crow[1:])
    return crow


def _csr_tensor(crow: Tensor, col: Tensor, val: Tensor, shape: Tuple[int, ...]) -> Tensor:
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
