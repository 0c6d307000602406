r"""Scorers of the NCF family (He et al., WWW 2017, arXiv:1708.05031): GMF, MLP and NeuMF.

They sit on top of the ID-embedding encoders of :mod:`graphcf.nn.encoders.ncf` and
return **logits** (no sigmoid: :func:`graphcf.losses.bce_loss` takes logits; the paper's
:math:`\sigma` is applied inside the loss, and ranking is unaffected by it).

Notation: :math:`\mathbf{p}_u, \mathbf{q}_i` user / item embeddings,
:math:`\phi` the ReLU tower, :math:`\mathbf{h}` the output weights (no bias, as in the
paper's equations).

Predictive factors convention (paper §4.1 and the authors' code): an MLP with per-side
embedding size :math:`d` and :math:`L \ge 1` hidden layers is the tower

.. math::
    2d \to d \to d/2 \to \dots \to d/2^{L-1},

and its *predictive factors* are the last width :math:`F = d / 2^{L-1}`; e.g. factors 8
with 3 layers is :math:`64 \to 32 \to 16 \to 8` with embeddings of size 32 per side
(:func:`graphcf.nn.encoders.ncf.mlp_embedding_dim` computes :math:`d` from
:math:`(F, L)`). MLP-0 (:math:`L = 0`) has no hidden layer: :math:`\hat y = \mathbf{h}^\top
[\mathbf{p}_u; \mathbf{q}_i]` with :math:`F = 2d`.

Every scorer has ``forward(user [B, d], item [B, d]) -> [B]`` and a loop-free
``score_all(user [B, d], item [I, d]) -> [B, I]``: GMF as a matrix product, the MLP with
its first layer split as :math:`W_1 [\mathbf{p}; \mathbf{q}] = W_1^U \mathbf{p} + W_1^I
\mathbf{q}` (computed once per user and once per item, then broadcast-added into a
``[B, I, d]`` block that the remaining layers run on). Because that block is larger than
the ``[B, I]`` score matrix, each scorer states :attr:`pair_cost`, the floats it
materialises per (user, item) pair in ``score_all``; the full-ranking evaluator sizes its
user chunks with it.

Initialisation follows the authors' released code: tower layers Glorot-uniform with zero
bias, :math:`\mathbf{h}` LeCun-uniform (:math:`\mathcal{U}(\pm\sqrt{3 / \text{fan\_in}})`).
"""
from __future__ import annotations

import logging
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder
from graphcf.nn.scorers import Scorer, _check_all, _check_pair

logger = logging.getLogger(__name__)

__all__ = ["MLPTower", "GMFScorer", "MLPScorer", "NeuMFScorer", "neumf_from_pretrained"]


def _check_width(owner: nn.Module, x: Tensor, expected: int) -> None:
    if x.shape[-1] != expected:
        raise ValueError(f"{type(owner).__name__}: expected representations of width {expected}, "
                         f"got {tuple(x.shape)}")


def _lecun_uniform_(weight: Tensor) -> None:
    bound = math.sqrt(3.0 / weight.shape[1])
    nn.init.uniform_(weight, -bound, bound)


class MLPTower(nn.Module):
    r"""NCF's ReLU tower over the concatenated embeddings.

    .. math::
        \mathbf{z}_1 = [\mathbf{p}_u; \mathbf{q}_i], \qquad
        \mathbf{z}_{l+1} = \operatorname{ReLU}(W_l \mathbf{z}_l + \mathbf{b}_l), \quad l = 1..L,

    with widths :math:`2d \to d \to d/2 \to \dots \to d/2^{L-1}`. With :math:`L = 0` the
    tower is the identity on :math:`[\mathbf{p}_u; \mathbf{q}_i]`.

    Args:
        dim: per-side embedding size :math:`d`.
        num_layers: hidden layers :math:`L \ge 0`; :math:`d` must be divisible by :math:`2^{L-1}`.
    """

    def __init__(self, dim: int, num_layers: int) -> None:
        super().__init__()
        dim, num_layers = int(dim), int(num_layers)
        if dim < 1 or num_layers < 0:
            raise ValueError(f"MLPTower: need dim >= 1 and num_layers >= 0, got {dim}, {num_layers}")
        if num_layers >= 1 and dim % 2 ** (num_layers - 1):
            raise ValueError(f"MLPTower: dim={dim} cannot be halved {num_layers - 1} times "
                             f"(must be divisible by {2 ** (num_layers - 1)})")
        self.dim, self.num_layers = dim, num_layers
        self.sizes: List[int] = [2 * dim] + [dim // 2 ** l for l in range(num_layers)]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:]))
        self.reset_parameters()

    @property
    def out_dim(self) -> int:
        """Width of the tower's output, the predictive factors :math:`F`."""
        return self.sizes[-1]

    @property
    def pair_cost(self) -> int:
        """Floats of the ``[B, I, .]`` blocks :meth:`all_pairs_score` creates per pair (hidden widths + 1)."""
        return sum(self.sizes[1:]) + 1

    def reset_parameters(self) -> None:
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pairs: ``[B, d], [B, d] -> [B, F]``."""
        x = torch.cat([user, item], dim=-1)
        for layer in self.layers:
            x = F.relu(layer(x))
        return x

    def all_pairs_score(self, user: Tensor, item: Tensor, h: Tensor) -> Tensor:
        r"""``h`` applied to the tower output of every (user, item) pair: ``[B, d], [I, d], [F] -> [B, I]``.

        .. math::
            \mathbf{z}_2[b, i] = \operatorname{ReLU}\big(\underbrace{W_1^U \mathbf{p}_b + \mathbf{b}_1}_{[B, d]}
            + \underbrace{W_1^I \mathbf{q}_i}_{[I, d]}\big)

        built by broadcasting into a ``[B, I, d]`` block; the remaining layers run on the
        block's last dimension. With :math:`L = 0`:
        :math:`\mathbf{h}^\top[\mathbf{p}_b; \mathbf{q}_i] = \mathbf{h}_U^\top \mathbf{p}_b
        + \mathbf{h}_I^\top \mathbf{q}_i`, a ``[B, I]`` outer sum.
        """
        d = self.dim
        if self.num_layers == 0:
            return (user @ h[:d]).unsqueeze(1) + (item @ h[d:]).unsqueeze(0)
        first = self.layers[0]
        a = F.linear(user, first.weight[:, :d], first.bias)  # [B, d]: once per user
        c = F.linear(item, first.weight[:, d:])  # [I, d]: once per item
        x = torch.relu_(a.unsqueeze(1) + c.unsqueeze(0))  # [B, I, d]
        for layer in self.layers[1:]:
            x = torch.relu_(layer(x))
        return x @ h  # [B, I]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_layers={self.num_layers}, sizes={self.sizes}"


class GMFScorer(Scorer):
    r"""Generalized Matrix Factorization (NCF §3.2).

    .. math::
        \hat y_{ui} = \mathbf{h}^\top (\mathbf{p}_u \odot \mathbf{q}_i)

    (a logit). :meth:`score_all` is :math:`(P \operatorname{diag}(\mathbf{h})) Q^\top`,
    i.e. ``(user * h) @ item.T``. With :math:`\mathbf{h} = \mathbf{1}` this is MF.

    Args:
        dim: embedding size :math:`d` of the paired :class:`~graphcf.nn.encoders.ncf.GMFEncoder`.

    Attributes:
        pair_cost: ``1`` (only the ``[B, I]`` score block is materialised).
    """

    pair_cost: int = 1

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        if int(dim) < 1:
            raise ValueError(f"GMFScorer: dim must be >= 1, got {dim}")
        self.dim = int(dim)
        self.h = nn.Linear(self.dim, 1, bias=False)
        self.reset_parameters()

    @property
    def factors(self) -> int:
        """Predictive factors (the width seen by :math:`\\mathbf{h}`), ``dim``."""
        return self.dim

    def reset_parameters(self) -> None:
        _lecun_uniform_(self.h.weight)

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pair logits: ``[B, d], [B, d] -> [B]``."""
        _check_pair(user, item)
        _check_width(self, user, self.dim)
        return (user * item) @ self.h.weight[0]

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """All-item logits ``(user * h) @ item.T``: ``[B, d], [I, d] -> [B, I]``."""
        _check_all(user, item)
        _check_width(self, user, self.dim)
        return (user * self.h.weight[0]) @ item.t()

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class MLPScorer(Scorer):
    r"""NCF's Multi-Layer Perceptron (NCF §3.3).

    .. math::
        \hat y_{ui} = \mathbf{h}^\top \phi_L\big(\dots \phi_1([\mathbf{p}_u; \mathbf{q}_i])\big),
        \qquad \phi_l(\mathbf{z}) = \operatorname{ReLU}(W_l \mathbf{z} + \mathbf{b}_l)

    with the tower of :class:`MLPTower` (:math:`2d \to d \to \dots \to d / 2^{L-1}`;
    predictive factors :math:`F = d / 2^{L-1}`). ``num_layers=0`` is the paper's MLP-0,
    :math:`\hat y_{ui} = \mathbf{h}^\top [\mathbf{p}_u; \mathbf{q}_i]`, which cannot model
    any user-item interaction (its ranking is the same for every user).

    Args:
        dim: per-side embedding size :math:`d` of the paired :class:`~graphcf.nn.encoders.ncf.MLPEncoder`.
        num_layers: hidden layers :math:`L`. Default: ``3`` (with ``dim=32``: factors 8).

    Attributes:
        pair_cost: floats per (user, item) pair in :meth:`score_all`: the hidden widths + 1
            (``1`` for MLP-0).
    """

    def __init__(self, dim: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        self.tower = MLPTower(dim, num_layers)
        self.h = nn.Linear(self.tower.out_dim, 1, bias=False)
        self.reset_parameters()

    @property
    def dim(self) -> int:
        return self.tower.dim

    @property
    def num_layers(self) -> int:
        return self.tower.num_layers

    @property
    def factors(self) -> int:
        """Predictive factors :math:`F` (the tower's output width)."""
        return self.tower.out_dim

    @property
    def pair_cost(self) -> int:
        return 1 if self.num_layers == 0 else self.tower.pair_cost

    def reset_parameters(self) -> None:
        self.tower.reset_parameters()
        _lecun_uniform_(self.h.weight)

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pair logits: ``[B, d], [B, d] -> [B]``."""
        _check_pair(user, item)
        _check_width(self, user, self.dim)
        return self.tower(user, item) @ self.h.weight[0]

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """All-item logits without a loop (first layer split per user / per item): ``[B, I]``."""
        _check_all(user, item)
        _check_width(self, user, self.dim)
        return self.tower.all_pairs_score(user, item, self.h.weight[0])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_layers={self.num_layers}, factors={self.factors}"


class NeuMFScorer(Scorer):
    r"""Neural Matrix Factorization: GMF and MLP fused in one output layer (NCF §3.4).

    User and item representations are ``[GMF part (d_G) | MLP part (d_M)]`` as returned
    by :class:`~graphcf.nn.encoders.ncf.NeuMFEncoder`.

    .. math::
        \phi^{GMF} = \mathbf{p}^G_u \odot \mathbf{q}^G_i, \qquad
        \phi^{MLP} = \phi_L(\dots\phi_1([\mathbf{p}^M_u; \mathbf{q}^M_i])), \qquad
        \hat y_{ui} = \mathbf{h}^\top \begin{bmatrix} \phi^{GMF} \\ \phi^{MLP} \end{bmatrix}

    :meth:`score_all` adds the GMF matrix product and the split-first-layer MLP block.

    Args:
        gmf_dim: :math:`d_G`. Default: ``8``.
        mlp_dim: :math:`d_M`, per-side MLP embedding size. Default: ``32``.
        num_layers: MLP hidden layers. Default: ``3``.

    Attributes:
        pair_cost: the MLP tower's hidden widths + 2 (its blocks, the GMF block and the sum).
    """

    def __init__(self, gmf_dim: int = 8, mlp_dim: int = 32, num_layers: int = 3) -> None:
        super().__init__()
        if int(gmf_dim) < 1:
            raise ValueError(f"NeuMFScorer: gmf_dim must be >= 1, got {gmf_dim}")
        self.gmf_dim = int(gmf_dim)
        self.tower = MLPTower(mlp_dim, num_layers)
        self.h = nn.Linear(self.gmf_dim + self.tower.out_dim, 1, bias=False)
        self.reset_parameters()

    @property
    def mlp_dim(self) -> int:
        return self.tower.dim

    @property
    def num_layers(self) -> int:
        return self.tower.num_layers

    @property
    def dim(self) -> int:
        """Width of the representations it scores, ``gmf_dim + mlp_dim``."""
        return self.gmf_dim + self.mlp_dim

    @property
    def factors(self) -> int:
        """Width seen by :math:`\\mathbf{h}`: ``gmf_dim`` + the MLP's predictive factors."""
        return self.gmf_dim + self.tower.out_dim

    @property
    def pair_cost(self) -> int:
        return (1 if self.num_layers == 0 else self.tower.pair_cost) + 2

    def reset_parameters(self) -> None:
        self.tower.reset_parameters()
        _lecun_uniform_(self.h.weight)

    def _split_h(self) -> Tuple[Tensor, Tensor]:
        h = self.h.weight[0]
        return h[: self.gmf_dim], h[self.gmf_dim :]

    def forward(self, user: Tensor, item: Tensor) -> Tensor:
        """Pair logits: ``[B, d_G + d_M], [B, d_G + d_M] -> [B]``."""
        _check_pair(user, item)
        _check_width(self, user, self.dim)
        g = self.gmf_dim
        phi = torch.cat([user[:, :g] * item[:, :g], self.tower(user[:, g:], item[:, g:])], dim=-1)
        return phi @ self.h.weight[0]

    def score_all(self, user: Tensor, item: Tensor) -> Tensor:
        """All-item logits ``(p_G * h_G) @ Q_G.T + MLP block``: ``[B, I]``."""
        _check_all(user, item)
        _check_width(self, user, self.dim)
        g = self.gmf_dim
        h_gmf, h_mlp = self._split_h()
        gmf = (user[:, :g] * h_gmf) @ item[:, :g].t()
        return gmf + self.tower.all_pairs_score(user[:, g:], item[:, g:], h_mlp)

    def extra_repr(self) -> str:
        return f"gmf_dim={self.gmf_dim}, mlp_dim={self.mlp_dim}, num_layers={self.num_layers}"


@torch.no_grad()
def neumf_from_pretrained(
    gmf_encoder: GMFEncoder,
    gmf_scorer: GMFScorer,
    mlp_encoder: MLPEncoder,
    mlp_scorer: MLPScorer,
    alpha: float = 0.5,
) -> Tuple[NeuMFEncoder, NeuMFScorer]:
    r"""A NeuMF initialised from pretrained GMF and MLP (NCF §3.4.1).

    The embedding tables and the MLP tower are copied; the fusion weights are

    .. math::
        \mathbf{h} \leftarrow \begin{bmatrix} \alpha\, \mathbf{h}^{GMF} \\
        (1 - \alpha)\, \mathbf{h}^{MLP} \end{bmatrix}

    so the new model's logits are exactly
    :math:`\alpha\, \hat y^{GMF}_{ui} + (1 - \alpha)\, \hat y^{MLP}_{ui}`. The copies
    share no storage with the pretrained modules, and are put on their device / dtype.

    Args:
        gmf_encoder, gmf_scorer: a trained GMF.
        mlp_encoder, mlp_scorer: a trained MLP (any number of layers).
        alpha: trade-off between the two (paper: ``0.5``), in ``[0, 1]``.

    Returns:
        ``(NeuMFEncoder, NeuMFScorer)``.

    Raises:
        ValueError: if universes or widths of the parts disagree, or ``alpha`` is outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"neumf_from_pretrained: alpha must be in [0, 1], got {alpha}")
    if (gmf_encoder.num_users, gmf_encoder.num_items) != (mlp_encoder.num_users, mlp_encoder.num_items):
        raise ValueError(
            f"neumf_from_pretrained: GMF was built for {gmf_encoder.num_users} x {gmf_encoder.num_items}, "
            f"MLP for {mlp_encoder.num_users} x {mlp_encoder.num_items}")
    if gmf_encoder.dim != gmf_scorer.dim or mlp_encoder.dim != mlp_scorer.dim:
        raise ValueError(
            f"neumf_from_pretrained: encoder/scorer widths differ (GMF {gmf_encoder.dim} vs {gmf_scorer.dim}, "
            f"MLP {mlp_encoder.dim} vs {mlp_scorer.dim})")
    ref = gmf_encoder.user_emb.weight
    encoder = NeuMFEncoder(gmf_encoder.num_users, gmf_encoder.num_items, gmf_dim=gmf_encoder.dim,
                           mlp_dim=mlp_encoder.dim, init_std=gmf_encoder.init_std).to(ref)
    scorer = NeuMFScorer(gmf_scorer.dim, mlp_scorer.dim, mlp_scorer.num_layers).to(ref)
    encoder.gmf_user_emb.weight.copy_(gmf_encoder.user_emb.weight)
    encoder.gmf_item_emb.weight.copy_(gmf_encoder.item_emb.weight)
    encoder.mlp_user_emb.weight.copy_(mlp_encoder.user_emb.weight)
    encoder.mlp_item_emb.weight.copy_(mlp_encoder.item_emb.weight)
    scorer.tower.load_state_dict(mlp_scorer.tower.state_dict())
    scorer.h.weight.copy_(torch.cat([alpha * gmf_scorer.h.weight, (1.0 - alpha) * mlp_scorer.h.weight], dim=1))
    logger.info("NeuMF from pretrained GMF (dim %d) and MLP (dim %d, %d layers), alpha=%g",
                gmf_encoder.dim, mlp_encoder.dim, mlp_scorer.num_layers, alpha)
    return encoder, scorer
