r"""Fused functions of the pairwise training step that never materialise the gathered batch rows.

A BPR step with :math:`B` positives and :math:`M` negatives each scores :math:`B(1+M)` pairs. Gathering
their embeddings first (``item_emb[items]``: ``[B, 1+M, d]``) costs a large temporary forward and,
in the backward, a scatter of an equally large gradient; at Gowalla's batch 8192 x 9 with NGCF's
256-dimensional output that is 75 MB per tensor, above glibc's largest mmap threshold, so every step
page-faults it in afresh. The functions here work on the batch's *unique* rows and their inverse
indices instead, in bounded chunks.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["gather_dot", "take_rows"]

#: target size of one chunk's gathered rows in :func:`gather_dot` (elements, ~4 MB in float32)
CHUNK_ELEMENTS = 1 << 20


class _GatherDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:  # type: ignore[override]
        n, m = ib.shape
        d = a.shape[1]
        out = a.new_empty(n, m)
        step = max(1, CHUNK_ELEMENTS // max(1, m * d))
        for s in range(0, n, step):
            e = min(n, s + step)
            # [c, m, d] @ [c, d, 1] -> [c, m, 1]
            torch.bmm(b[ib[s:e]], a[ia[s:e]].unsqueeze(2), out=out[s:e].unsqueeze(2))
        ctx.save_for_backward(a, b, ia, ib)
        return out

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        a, b, ia, ib = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ga = torch.zeros_like(a) if need_a else None
        gb = torch.zeros_like(b) if need_b else None
        n, m = ib.shape
        d = a.shape[1]
        g = g.contiguous()
        step = max(1, CHUNK_ELEMENTS // max(1, m * d))
        for s in range(0, n, step):
            e = min(n, s + step)
            gc = g[s:e]  # [c, m]
            if ga is not None:  # sum_m g[r, m] b[ib[r, m]]: [c, 1, m] @ [c, m, d]
                ga.index_add_(0, ia[s:e], torch.bmm(gc.unsqueeze(1), b[ib[s:e]]).squeeze(1))
            if gb is not None:  # g[r, m] a[ia[r]] for every (r, m)
                rows = (gc.unsqueeze(2) * a[ia[s:e]].unsqueeze(1)).reshape(-1, d)
                gb.index_add_(0, ib[s:e].reshape(-1), rows)
        return ga, gb, None, None


def gather_dot(a: Tensor, b: Tensor, ia: Tensor, ib: Tensor) -> Tensor:
    r"""Inner products of gathered rows, without the gathered tensors:

    .. math::
        s_{rm} = \langle \mathbf{a}_{ia_r}, \mathbf{b}_{ib_{rm}} \rangle,

    equal to ``(a[ia].unsqueeze(1) * b[ib]).sum(-1)``. Forward and backward run in chunks of
    rows whose gathered blocks hold about :data:`CHUNK_ELEMENTS` numbers; the backward
    scatters into ``a``- and ``b``-shaped gradients (``index_add_``), so repeated indices sum.

    Args:
        a: ``[Na, d]`` rows (e.g. the batch's unique users).
        b: ``[Nb, d]`` rows (e.g. the batch's unique items).
        ia: ``[R]`` indices into ``a``.
        ib: ``[R, M]`` (or ``[R]``, read as ``M = 1``) indices into ``b``.

    Returns:
        ``[R, M]`` scores (``[R]`` if ``ib`` was 1-D).
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"gather_dot: a and b must be [N, d] with the same d, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    flat = ib.dim() == 1
    ib2 = ib.unsqueeze(1) if flat else ib
    if ia.dim() != 1 or ib2.dim() != 2 or ib2.shape[0] != ia.shape[0]:
        raise ValueError(f"gather_dot: ia must be [R] and ib [R] or [R, M], got {tuple(ia.shape)} and "
                         f"{tuple(ib.shape)}")
    if b.dtype != a.dtype:
        raise ValueError(f"gather_dot: a and b must share a dtype, got {a.dtype} and {b.dtype}")
    out = _GatherDot.apply(a.contiguous(), b.contiguous(), ia.long().contiguous(), ib2.long().contiguous())
    return out.squeeze(1) if flat else out


def take_rows(rows: Tensor, inv: Tensor) -> Tensor:
    """``rows[inv]``, or ``rows`` itself (no copy) when ``inv`` is 1-D and equals ``0..n-1``: the
    requested ids were already the sorted unique ones, as in the objectives' unique-row path."""
    if inv.dim() == 1 and inv.numel() == rows.shape[0] and \
            bool((inv == torch.arange(len(inv), device=inv.device)).all()):
        return rows
    return rows[inv]
