r"""EASE (Steck, WWW 2019): a closed-form item-item model, training-free.

With the binary training matrix :math:`\mathbf{X} \in \{0,1\}^{U \times I}` and the L2 weight
:math:`\lambda`,

.. math::
    \mathbf{G} = \mathbf{X}^\top \mathbf{X} + \lambda \mathbf{I}, \qquad
    \mathbf{P} = \mathbf{G}^{-1}, \qquad
    \mathbf{B} = \mathbf{I} - \mathbf{P} \, \operatorname{diag}(1 / \operatorname{diag}(\mathbf{P})),

i.e. :math:`B_{ij} = -P_{ij} / P_{jj}` off the diagonal and :math:`B_{jj} = 0` (the solution of
:math:`\min_B \lVert X - XB \rVert_F^2 + \lambda \lVert B \rVert_F^2` subject to
:math:`\operatorname{diag}(B) = 0`). A user's scores are their training row times :math:`B`,
:math:`\hat{\mathbf{y}}_u = \mathbf{x}_u \mathbf{B}`, computed for chunks of users (a sparse
``[chunk, I]`` block of rows times the dense ``[I, I]`` matrix).

The dense item-item matrix is what limits EASE. The inverse is taken by LAPACK through torch
(``torch.linalg.cholesky`` then ``torch.cholesky_inverse``: the fastest, about three ``[I, I]``
buffers at its peak, 18.8 GiB for Gowalla's 40,981 items in float32) when that fits, else by
:func:`spd_inverse_`, a blocked Cholesky / triangular-inverse / product in the matrix's own memory
(one buffer plus ``[I, block]`` panels; about 10% slower). Both are plain torch, on any device. The
fit estimates the figure first and refuses with it when even one buffer does not fit in the memory
available (or in ``max_memory_gb``).
"""
from __future__ import annotations

import logging
import time
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.model import TrainingFreeModel, available_memory_bytes, check_memory, estimate_dense_bytes

logger = logging.getLogger(__name__)

__all__ = ["EASE", "spd_inverse_"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class EASE(TrainingFreeModel):
    r"""EASE\ :sup:`R` (Steck 2019); see the module docstring for the closed form.

    Args:
        num_users, num_items: universe sizes.
        l2: :math:`\lambda`, the L2 weight. (default: ``500.0``, the paper's value on ML-20M; pick it
            on a validation split: ``benchmarks/bench_ease.py`` searches a grid)
        dtype: ``"float32"`` (default: half the memory and about twice the speed of ``"float64"``,
            scores equal to 1e-4 relative on the benchmark data) or ``"float64"``.
        max_memory_gb: refuse to fit when the dense matrices need more than this (default: the memory
            available on the device).
        inverse: ``"auto"`` (LAPACK when its three ``[I, I]`` buffers fit, else blocked), ``"lapack"`` or
            ``"blocked"`` (:func:`spd_inverse_`, in place). (default: ``"auto"``)
        block: block size of the blocked inverse. (default: ``1024``)
    """

    def __init__(self, num_users: int, num_items: int, l2: float = 500.0, dtype: str = "float32",
                 max_memory_gb: Optional[float] = None, inverse: str = "auto", block: int = 1024) -> None:
        super().__init__(num_users, num_items)
        if not l2 > 0:
            raise ValueError(f"EASE: l2 must be > 0, got {l2}")
        if dtype not in _DTYPES:
            raise ValueError(f"EASE: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if max_memory_gb is not None and max_memory_gb <= 0:
            raise ValueError(f"EASE: max_memory_gb must be > 0, got {max_memory_gb}")
        if inverse not in ("auto", "lapack", "blocked") or block < 1:
            raise ValueError(f"EASE: inverse must be 'auto', 'lapack' or 'blocked' and block >= 1, got {inverse!r}, "
                             f"{block}")
        self.l2, self.dtype_name = float(l2), dtype
        self.max_memory_gb = max_memory_gb
        self.inverse, self.block = inverse, int(block)
        self.register_buffer("B", torch.zeros(0, 0, dtype=_DTYPES[dtype]))

    def _memory_parts(self) -> Tuple[float, float]:
        """``(bytes of one [I, I] buffer, bytes of the [I, block] work panels)``."""
        n, dtype = self.num_items, _DTYPES[self.dtype_name]
        return (float(estimate_dense_bytes((n, n), dtype=dtype)),
                float(estimate_dense_bytes((max(self.num_users, n), min(n, self.block)), dtype=dtype, copies=3)))

    def fit_memory_bytes(self, method: str = "blocked") -> int:
        """Bytes the fit needs at its peak with ``method`` (``"lapack"``: three ``[I, I]`` buffers;
        ``"blocked"``: one), plus the work panels."""
        one, panels = self._memory_parts()
        return int((3 if method == "lapack" else 1) * one + panels)

    def choose_inverse(self, device: torch.device, limit: Optional[int] = None) -> str:
        """``self.inverse``, or for ``"auto"`` the LAPACK path when its three buffers fit, else ``"blocked"``."""
        if self.inverse != "auto":
            return self.inverse
        avail = limit if limit is not None else available_memory_bytes(device)
        return "lapack" if avail is not None and self.fit_memory_bytes("lapack") <= avail else "blocked"

    @torch.no_grad()
    def gram(self, x: Tensor, out: Optional[Tensor] = None) -> Tensor:
        r""":math:`\mathbf{X}^\top \mathbf{X}` as a dense ``[I, I]`` matrix (into ``out`` when given): the sparse
        product :math:`\mathbf{X}^\top \mathbf{X}` (its nonzeros only), then scattered into the zeroed buffer."""
        dtype = _DTYPES[self.dtype_name]
        n = self.num_items
        x = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), x.values().to(dtype), x.shape,
                                    check_invariants=False)
        xt = x.to_sparse_coo().t().coalesce().to_sparse_csr()
        g_sparse = torch.sparse.mm(xt, x)
        g = out if out is not None else torch.empty(n, n, dtype=dtype, device=x.device)
        g.zero_()
        crow, col, val = g_sparse.crow_indices(), g_sparse.col_indices(), g_sparse.values()
        rows = torch.repeat_interleave(torch.arange(n, device=crow.device), crow.diff())
        g.view(-1).index_put_((rows * n + col.long(),), val.to(dtype), accumulate=True)
        return g

    @torch.no_grad()
    def fit_closed_form(self, data: HeteroData) -> None:
        t0 = time.perf_counter()
        device = self.device
        limit = None if self.max_memory_gb is None else int(self.max_memory_gb * 2**30)
        method = self.choose_inverse(device, limit)
        check_memory(self.fit_memory_bytes(method), f"EASE on {self.num_items} items ({self.dtype_name}, {method} "
                                                    f"inverse of the dense X^T X + l2 I)", device, limit)
        self.B = torch.zeros(0, 0, dtype=_DTYPES[self.dtype_name], device=device)  # free a previous fit first
        x = self.training_rows(data)
        g = self.gram(x)
        t_gram = time.perf_counter() - t0
        g.diagonal().add_(self.l2)
        try:
            if method == "lapack":
                torch.linalg.cholesky(g, out=g)  # lower factor
                p = torch.cholesky_inverse(g)
                del g
                if not p.is_contiguous() and p.T.is_contiguous():
                    p = p.T  # LAPACK's column-major result: P is symmetric, so its transpose is P, row-major
            else:
                p = spd_inverse_(g, self.block)
        except torch.linalg.LinAlgError as e:
            raise ValueError(f"EASE: X^T X + l2 I is not positive definite in {self.dtype_name} ({e}); raise l2 "
                             "or use dtype float64") from None
        diag = p.diagonal().clone()
        p.div_(-diag.unsqueeze(0))  # B_ij = -P_ij / P_jj
        p.diagonal().zero_()
        self.B = p
        logger.info("EASE fitted on %d users x %d items (l2=%g, %s, %s inverse): X^T X %.1f s, total %.1f s",
                    self.num_users, self.num_items, self.l2, self.dtype_name, method, t_gram,
                    time.perf_counter() - t0)

    def score_rows(self, x: Tensor) -> Tensor:
        if self.B.shape != (self.num_items, self.num_items):
            raise RuntimeError("EASE: fit it first (fit_closed_form, graphcf train, or load a fitted state)")
        x = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), x.values().to(self.B.dtype), x.shape,
                                    check_invariants=False)
        # a row-major B: each nonzero of x reads one contiguous row (a column-major B made Gowalla's full
        # ranking 9x slower)
        b = self.B if self.B.is_contiguous() else self.B.contiguous()
        return _sparse_rows_mm(x, b).float()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # type: ignore[no-untyped-def]
        key = prefix + "B"
        if key in state_dict:  # a fitted state: take its shape
            self.B = torch.empty_like(state_dict[key], device=self.B.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f"{self.num_users}, {self.num_items}, l2={self.l2}, dtype={self.dtype_name}"


#: most elements of one dense operand of a sparse product: MKL indexes it with 32-bit integers (a
#: 57,289^2 B for amazon-beauty, 3.3e9 elements, crashed torch.sparse.mm)
_MAX_DENSE_ELEMENTS = 2**31 - 1


def _sparse_rows_mm(x: Tensor, b: Tensor) -> Tensor:
    """``x @ b`` for a sparse CSR ``x [B, I]`` and a row-major ``b [I, J]``; when ``b`` has more than
    :data:`_MAX_DENSE_ELEMENTS` elements, as a sum over row blocks of ``b`` (contiguous views, no copy)
    times the matching column blocks of ``x``."""
    rows_per_block = max(1, _MAX_DENSE_ELEMENTS // max(1, b.shape[1]))
    if b.shape[0] <= rows_per_block:
        return torch.sparse.mm(x, b)
    crow, col, val = x.crow_indices().long(), x.col_indices().long(), x.values()
    row = torch.repeat_interleave(torch.arange(x.shape[0], device=crow.device), crow.diff())
    out = None
    for r0 in range(0, b.shape[0], rows_per_block):
        r1 = min(b.shape[0], r0 + rows_per_block)
        keep = (col >= r0) & (col < r1)
        part = torch.sparse_coo_tensor(torch.stack([row[keep], col[keep] - r0]), val[keep], (x.shape[0], r1 - r0),
                                       check_invariants=False).coalesce().to_sparse_csr()
        prod = torch.sparse.mm(part, b[r0:r1])
        out = prod if out is None else out.add_(prod)
    return out


@torch.no_grad()
def spd_inverse_(a: Tensor, block: int = 1024) -> Tensor:
    r"""Invert the symmetric positive definite ``a`` (``[n, n]``, row-major) in its own memory.

    Three blocked passes, each a loop of matrix products on ``block``-sized panels (LAPACK's ``potrf``,
    ``trtri`` and ``lauum`` algorithms, lower variants), so only ``[n, block]`` temporaries are allocated:

    1. :math:`\mathbf{A} = \mathbf{L}\mathbf{L}^\top` (right-looking Cholesky; the lower triangle only);
    2. :math:`\mathbf{L} \leftarrow \mathbf{L}^{-1}` (from the bottom-right block up:
       :math:`\mathbf{L}^{-1}_{21} = -\mathbf{L}^{-1}_{22}\mathbf{L}_{21}\mathbf{L}^{-1}_{11}`);
    3. :math:`\mathbf{A}^{-1} = \mathbf{L}^{-\top}\mathbf{L}^{-1}` (top-down, lower triangle), then the upper
       triangle copied from the lower one.

    Returns ``a``, now holding :math:`\mathbf{A}^{-1}`. Raises ``torch.linalg.LinAlgError`` if ``a`` is not
    positive definite.
    """
    n = a.shape[0]
    nb = max(1, int(block))
    starts = list(range(0, n, nb))
    for j in starts:  # 1. Cholesky
        e = min(n, j + nb)
        d = torch.linalg.cholesky(a[j:e, j:e])
        a[j:e, j:e] = d
        if e < n:
            p = torch.linalg.solve_triangular(d, a[e:, j:e].T, upper=False).T.contiguous()  # A21 L11^-T
            a[e:, j:e] = p
            for i in range(e, n, nb):
                k = min(n, i + nb)
                a[i:k, e:k].addmm_(p[i - e:k - e], p[: k - e].T, alpha=-1.0)
    for j in reversed(starts):  # 2. L^-1
        e = min(n, j + nb)
        ljj = torch.tril(a[j:e, j:e])
        if e < n:
            a21 = a[e:, j:e].clone()
            t = torch.empty_like(a21)
            for i in range(e, n, nb):
                k = min(n, i + nb)
                ti = torch.tril(a[i:k, i:k]) @ a21[i - e:k - e]
                if i > e:
                    ti.addmm_(a[i:k, e:i], a21[: i - e])
                t[i - e:k - e] = ti
            a[e:, j:e] = -torch.linalg.solve_triangular(ljj, t, upper=False, left=False)
        eye = torch.eye(e - j, dtype=a.dtype, device=a.device)
        a[j:e, j:e] = torch.linalg.solve_triangular(ljj, eye, upper=False)
    for i in starts:  # 3. L^-T L^-1
        e = min(n, i + nb)
        lii = torch.tril(a[i:e, i:e])
        diag = lii.T @ lii
        if i > 0:
            row = lii.T @ a[i:e, :i]
            if e < n:
                row.addmm_(a[e:, i:e].T, a[e:, :i])
            a[i:e, :i] = row
        if e < n:
            diag.addmm_(a[e:, i:e].T, a[e:, i:e])
        a[i:e, i:e] = diag
    for j in starts:  # the upper triangle
        e = min(n, j + nb)
        if e < n:
            a[j:e, e:] = a[e:, j:e].T
    return a
