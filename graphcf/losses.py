"""Losses: pure functions of scores (and embeddings for regularisation)."""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
import torch
from torch import Tensor


def _pair_mean(pairs: Tensor, mask: Tensor | None, who: str) -> Tensor:
    """Mean of the pair losses, over all pairs or over those where ``mask`` is true."""
    if mask is None:
        return pairs.mean()
    if mask.shape != pairs.shape:
        raise ValueError(f"{who}: mask shape {tuple(mask.shape)} != pairs shape {tuple(pairs.shape)}")
    return (pairs * mask.to(pairs.dtype)).sum() / mask.sum().clamp_min(1)


def bpr_loss(pos: Tensor, neg: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""Bayesian personalised ranking loss (Rendle et al., UAI 2009).

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(u,i,j) \in P} -\ln \sigma(\hat y_{ui} - \hat y_{uj})

    ``pos [B]`` and ``neg [B]`` or ``neg [B, N]`` (each negative paired with its row's
    positive; the mean runs over all pairs :math:`P`, or over those where ``mask`` (shaped
    like ``neg``) is true). Computed as ``softplus(neg - pos)`` for numerical stability.
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return _pair_mean(F.softplus(neg - pos), mask, "bpr_loss")


def margin_loss(pos: Tensor, neg: Tensor, margin: float = 0.1, mask: Tensor | None = None) -> Tensor:
    r"""Max-margin ranking loss of PinSAGE (Ying et al., KDD 2018, eq. (1)).

    .. math::
        \mathcal{L} = \frac{1}{|P|} \sum_{(u,i,j) \in P} \max(0,\ \hat y_{uj} - \hat y_{ui} + \Delta)

    ``pos [B]``, ``neg [B]`` or ``[B, N]`` (each negative paired with its row's positive),
    :math:`\Delta` = ``margin``; the mean runs over all pairs or over those where ``mask`` is true.
    """
    if margin < 0:
        raise ValueError(f"margin_loss: margin must be >= 0, got {margin}")
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return _pair_mean(F.relu(neg - pos + margin), mask, "margin_loss")


def sampled_softmax_loss(pos: Tensor, neg: Tensor, temperature: float = 1.0, mask: Tensor | None = None) -> Tensor:
    r"""Sampled softmax: the positive against its row's negatives, as a classification.

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_{b} \log
        \frac{\exp(\hat y_{b}^{+} / \tau)}{\exp(\hat y_{b}^{+} / \tau) + \sum_{j \in N_b} \exp(\hat y_{bj}^{-} / \tau)}

    ``pos [B]``, ``neg [B, N]`` (or ``[B]``), :math:`\tau` = ``temperature``; negatives where
    ``mask`` is false are left out of the denominator.
    """
    if temperature <= 0:
        raise ValueError(f"sampled_softmax_loss: temperature must be > 0, got {temperature}")
    if neg.dim() == pos.dim():
        neg = neg.unsqueeze(-1)
        mask = None if mask is None else mask.unsqueeze(-1)
    if mask is not None and mask.shape != neg.shape:
        raise ValueError(f"sampled_softmax_loss: mask shape {tuple(mask.shape)} != neg shape {tuple(neg.shape)}")
    logits = torch.cat([pos.unsqueeze(-1), neg], dim=-1) / temperature
    if mask is not None:
        keep = torch.cat([torch.ones_like(mask[..., :1]), mask], dim=-1)
        logits = logits.masked_fill(~keep, float("-inf"))
    return -(logits[..., 0] - torch.logsumexp(logits, dim=-1)).mean()


PAIR_LOSSES = ("bpr", "margin", "softmax")  #: the pairwise losses (negatives, hard negatives, shared sampler)
LOSSES = PAIR_LOSSES + ("bce", "multinomial")  #: every ``TrainConfig.loss`` / ``graphcf train --loss``


def l2_reg(*embeddings: Tensor, batch_size: int | None = None,
           weights: Sequence[Tensor | None] | None = None) -> Tensor:
    r"""L2 penalty on the embeddings actually used in a batch, LightGCN convention.

    .. math::
        \Omega = \frac{1}{2B} \sum_{e \in \text{batch}} \lVert e \rVert_2^2
        \qquad\text{or, with weights,}\qquad
        \Omega = \frac{1}{2B} \sum_k \sum_r w_{kr} \lVert e_{kr} \rVert_2^2

    The weighted form is the penalty of a batch computed on its *unique* rows, row
    :math:`r` of tensor :math:`k` counting :math:`w_{kr}` times (how often the batch uses it).

    Args:
        embeddings: the batch's rows (e.g. user, positive and negative item embeddings).
        batch_size: ``B``; default the first tensor's number of rows.
        weights: one ``[N_k]`` weight vector (or ``None``: all ones) per tensor.
    """
    if not embeddings:
        raise ValueError("l2_reg: give at least one tensor")
    if weights is not None and len(weights) != len(embeddings):
        raise ValueError(f"l2_reg: weights must give one entry per tensor ({len(embeddings)}), got {len(weights)}")
    b = embeddings[0].shape[0] if batch_size is None else batch_size
    total: Tensor | float = 0.0
    for k, e in enumerate(embeddings):
        w = None if weights is None else weights[k]
        if w is None:
            # ||e||^2 via vector_norm: one pass each way (pow(2).sum() and its backward: ~1.9x slower)
            total = total + torch.linalg.vector_norm(e).square()
            continue
        if e.dim() != 2 or w.shape != (e.shape[0],):
            raise ValueError(f"l2_reg: weights[{k}] must be [{e.shape[0]}] for rows {tuple(e.shape)}, got "
                             f"{tuple(w.shape)}")
        sq = torch.linalg.vector_norm(e, dim=1).square() if e.numel() else e.new_zeros(e.shape[0])
        total = total + (sq * w.to(sq.dtype)).sum()
    return total / (2 * max(b, 1))  # type: ignore[return-value]


def bce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    r"""Pointwise log loss (NCF), on logits for stability.

    .. math::
        \mathcal{L} = -\frac{1}{B}\sum_b y_b \log \sigma(s_b) + (1 - y_b)\log(1 - \sigma(s_b))
    """
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def multinomial_nll(logits: Tensor, target: Tensor) -> Tensor:
    r"""Multinomial negative log-likelihood of Mult-VAE / Mult-DAE (Liang et al., 2018).

    .. math::
        \mathcal{L} = -\frac{1}{B}\sum_{u} \sum_{i} x_{ui} \log \operatorname{softmax}(\mathbf{s}_u)_i

    Args:
        logits: ``[B, I]`` unnormalised scores.
        target: ``[B, I]`` interaction counts (0/1 for implicit feedback), dense or a torch
            sparse (COO or CSR) tensor. The sparse form is the fast path for large ``I``: only
            the log-probabilities of the nonzero entries are gathered, so no dense target
            is built and the backward pass scatters ``nnz`` values instead of multiplying a
            ``[B, I]`` block.
    """
    if target.shape != logits.shape:
        raise ValueError(f"multinomial_nll: target shape {tuple(target.shape)} != logits shape {tuple(logits.shape)}")
    log_p = F.log_softmax(logits, dim=-1)
    if target.layout == torch.strided:
        return -(log_p * target).sum(dim=-1).mean()
    coo = target.to_sparse_coo().coalesce()
    (row, col), val = coo.indices(), coo.values()
    return -(log_p[row, col] * val.to(log_p.dtype)).sum() / max(logits.shape[0], 1)
