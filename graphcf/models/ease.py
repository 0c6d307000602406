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

The dense item-item matrix is what limits EASE. On the CPU the inverse is computed in place
(LAPACK ``potrf`` then ``potri`` through SciPy, one ``[I, I]`` buffer: 6.3 GiB for Gowalla's
40,981 items in float32); elsewhere (CUDA, MPS) the portable ``torch.linalg.cholesky`` +
``torch.cholesky_inverse`` path needs two. The fit estimates that figure first and refuses with it
when it does not fit in the memory available (or in ``max_memory_gb``).
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.model import TrainingFreeModel, check_memory, estimate_dense_bytes

logger = logging.getLogger(__name__)

__all__ = ["EASE"]

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
        column_chunk: items per block while forming :math:`\mathbf{X}^\top \mathbf{X}`. (default: ``4096``)
    """

    def __init__(self, num_users: int, num_items: int, l2: float = 500.0, dtype: str = "float32",
                 max_memory_gb: Optional[float] = None, column_chunk: int = 4096) -> None:
        super().__init__(num_users, num_items)
        if not l2 > 0:
            raise ValueError(f"EASE: l2 must be > 0, got {l2}")
        if dtype not in _DTYPES:
            raise ValueError(f"EASE: dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if max_memory_gb is not None and max_memory_gb <= 0:
            raise ValueError(f"EASE: max_memory_gb must be > 0, got {max_memory_gb}")
        self.l2, self.dtype_name = float(l2), dtype
        self.max_memory_gb = max_memory_gb
        self.column_chunk = int(column_chunk)
        self.register_buffer("B", torch.zeros(0, 0, dtype=_DTYPES[dtype]))

    def in_place(self, device: Optional[torch.device] = None) -> bool:
        """Whether the fit inverts in place (the CPU with SciPy's LAPACK) rather than by the portable torch path."""
        device = device or self.device
        if device.type != "cpu":
            return False
        try:
            import scipy.linalg.lapack  # noqa: F401
        except ImportError:  # pragma: no cover - scipy is a dependency
            return False
        return True

    def fit_memory_bytes(self, device: Optional[torch.device] = None) -> int:
        """Bytes the fit needs at its peak: :math:`\\mathbf{G}` (inverted in place on the CPU, beside a second
        ``[I, I]`` buffer elsewhere), plus one column block of :math:`\\mathbf{X}` or of the symmetrisation."""
        n, dtype = self.num_items, _DTYPES[self.dtype_name]
        copies = 1 if self.in_place(device) else 2
        return estimate_dense_bytes((n, n), dtype=dtype, copies=copies) + \
            estimate_dense_bytes((max(self.num_users, n), min(n, self.column_chunk)), dtype=dtype)

    @torch.no_grad()
    def gram(self, x: Tensor) -> Tensor:
        r""":math:`\mathbf{X}^\top \mathbf{X}` as a dense ``[I, I]`` matrix, one block of columns at a time
        (a dense ``[U, chunk]`` block of :math:`\mathbf{X}` times the sparse :math:`\mathbf{X}^\top`)."""
        dtype = _DTYPES[self.dtype_name]
        n = self.num_items
        coo = x.to_sparse_coo().coalesce()
        rows, cols = coo.indices()
        xt = torch.sparse_coo_tensor(torch.stack([cols, rows]), torch.ones_like(rows, dtype=dtype),
                                     (n, self.num_users), check_invariants=False).coalesce().to_sparse_csr()
        order = torch.argsort(cols, stable=True)
        cols_sorted, rows_sorted = cols[order], rows[order]
        bounds = torch.searchsorted(cols_sorted, torch.arange(0, n + self.column_chunk, self.column_chunk,
                                                              device=cols.device).clamp_max(n))
        g = torch.empty(n, n, dtype=dtype, device=x.device)
        for b, c0 in enumerate(range(0, n, self.column_chunk)):
            c1 = min(n, c0 + self.column_chunk)
            lo, hi = int(bounds[b]), int(bounds[b + 1])
            block = torch.zeros(self.num_users, c1 - c0, dtype=dtype, device=x.device)
            block[rows_sorted[lo:hi], cols_sorted[lo:hi] - c0] = 1.0
            g[:, c0:c1] = torch.sparse.mm(xt, block)
        return g

    @torch.no_grad()
    def fit_closed_form(self, data: HeteroData) -> None:
        t0 = time.perf_counter()
        device = self.device
        limit = None if self.max_memory_gb is None else int(self.max_memory_gb * 2**30)
        check_memory(self.fit_memory_bytes(device), f"EASE on {self.num_items} items ({self.dtype_name}: the dense "
                                              f"X^T X and its inverse)", device, limit)
        x = self.training_rows(data)
        g = self.gram(x)
        t_gram = time.perf_counter() - t0
        g.diagonal().add_(self.l2)
        if self.in_place(device):
            p = self._inverse_in_place(g)
        else:  # portable: two [I, I] buffers
            torch.linalg.cholesky(g, out=g)  # lower factor in place
            p = torch.cholesky_inverse(g)
            del g
        diag = p.diagonal().clone()
        p.div_(-diag.unsqueeze(0))  # B_ij = -P_ij / P_jj
        p.diagonal().zero_()
        self.B = p
        logger.info("EASE fitted on %d users x %d items (l2=%g, %s): X^T X %.1f s, total %.1f s",
                    self.num_users, self.num_items, self.l2, self.dtype_name, t_gram, time.perf_counter() - t0)

    def _inverse_in_place(self, g: Tensor) -> Tensor:
        """:math:`\\mathbf{G}^{-1}` in ``g``'s own memory (CPU): LAPACK ``potrf`` + ``potri`` on the Fortran view
        of the symmetric, C-ordered ``g``, then the triangle copied across in column blocks."""
        from scipy.linalg import lapack

        a = g.numpy()  # shares memory
        f = a.T  # Fortran-contiguous view of the same (symmetric) matrix
        potrf, potri = (lapack.spotrf, lapack.spotri) if a.dtype == np.float32 else (lapack.dpotrf, lapack.dpotri)
        c, info = potrf(f, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise ValueError(f"EASE: X^T X + l2 I is not positive definite (LAPACK potrf info={info}); raise l2")
        inv, info = potri(c, lower=1, overwrite_c=1)
        if info != 0 or not np.shares_memory(inv, a):
            raise RuntimeError(f"EASE: in-place inverse failed (LAPACK potri info={info})")
        # the Fortran view's lower triangle is the C view's upper one: copy it to the lower triangle
        n, step = a.shape[0], max(1, self.column_chunk)
        for j in range(0, n, step):
            k = min(n, j + step)
            a[k:, j:k] = a[j:k, k:].T  # rows below the block from the columns right of it
            blk = a[j:k, j:k]
            blk[...] = np.triu(blk) + np.triu(blk, 1).T
        return g

    def score_rows(self, x: Tensor) -> Tensor:
        if self.B.shape != (self.num_items, self.num_items):
            raise RuntimeError("EASE: fit it first (fit_closed_form, graphcf train, or load a fitted state)")
        x = torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), x.values().to(self.B.dtype), x.shape,
                                    check_invariants=False)
        return torch.sparse.mm(x, self.B).float()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # type: ignore[no-untyped-def]
        key = prefix + "B"
        if key in state_dict:  # a fitted state: take its shape
            self.B = torch.empty_like(state_dict[key], device=self.B.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f"{self.num_users}, {self.num_items}, l2={self.l2}, dtype={self.dtype_name}"
