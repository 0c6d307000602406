r"""The NCF family (He et al., WWW 2017, arXiv:1708.05031) as zero-hop encoders.

The three NCF models share one input layer: one-hot user and item IDs looked up in
embedding tables. The encoders here hold exactly these tables; everything above the
embedding layer (element-wise product, MLP tower, fusion layer :math:`\mathbf{h}`)
lives in the matching scorers of :mod:`graphcf.nn.scorers_ncf`:

=========  ==============================  =========================================
model      encoder (this module)           scorer
=========  ==============================  =========================================
GMF        :class:`GMFEncoder` (dim)       :class:`~graphcf.nn.scorers_ncf.GMFScorer`
MLP        :class:`MLPEncoder` (dim)       :class:`~graphcf.nn.scorers_ncf.MLPScorer`
NeuMF      :class:`NeuMFEncoder`           :class:`~graphcf.nn.scorers_ncf.NeuMFScorer`
=========  ==============================  =========================================

As in the paper, the embeddings are initialised from :math:`\mathcal{N}(0, 0.01^2)`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.nn.encoders.base import Encoder
from graphcf.nn.encoders.mf import MFEncoder
from graphcf.typing import UserItemEmbeddings

__all__ = ["GMFEncoder", "MLPEncoder", "NeuMFEncoder", "mlp_embedding_dim"]


def mlp_embedding_dim(factors: int, num_layers: int) -> int:
    r"""Per-side embedding size of an NCF MLP with ``factors`` predictive factors and ``num_layers`` hidden layers.

    The tower halves its width at every layer and the *predictive factors* are the size
    of the last representation before the output weights :math:`\mathbf{h}` (paper §4.1,
    and the authors' code: ``layers=[64, 32, 16, 8]`` is factors 8 with 3 hidden layers):

    .. math::
        \underbrace{2d}_{[\mathbf{p}_u; \mathbf{q}_i]} \to d \to d/2 \to \dots \to
        \underbrace{d / 2^{L-1}}_{\text{factors}}, \qquad d = \text{factors} \cdot 2^{L-1}

    With :math:`L = 0` (MLP-0) the concatenation itself is the predictive vector, so
    :math:`2d = \text{factors}` and :math:`d = \text{factors} / 2`.

    Raises:
        ValueError: for ``factors < 1``, ``num_layers < 0``, or odd ``factors`` with ``num_layers == 0``.
    """
    if factors < 1 or num_layers < 0:
        raise ValueError(f"mlp_embedding_dim: need factors >= 1 and num_layers >= 0, got {factors}, {num_layers}")
    if num_layers == 0:
        if factors % 2:
            raise ValueError(f"mlp_embedding_dim: MLP-0 concatenates two embeddings, factors must be even, got {factors}")
        return factors // 2
    return factors * 2 ** (num_layers - 1)


def _check_dim(owner: object, name: str, value: int) -> None:
    if int(value) < 1:
        raise ValueError(f"{type(owner).__name__}: {name} must be >= 1, got {value}")


class GMFEncoder(MFEncoder):
    r"""GMF's input layer: latent vectors :math:`\mathbf{p}_u, \mathbf{q}_i \in \mathbb{R}^{d}`.

    .. math::
        \mathbf{e}_u = \mathbf{P}^\top \mathbf{v}^U_u = \mathbf{p}_u, \qquad
        \mathbf{e}_i = \mathbf{Q}^\top \mathbf{v}^I_i = \mathbf{q}_i

    Pair it with :class:`~graphcf.nn.scorers_ncf.GMFScorer` (same ``dim``):
    :math:`\hat y_{ui} = \mathbf{h}^\top (\mathbf{p}_u \odot \mathbf{q}_i)`.

    Args:
        num_users, num_items: universe sizes.
        dim: embedding size :math:`d` (= GMF's predictive factors). Default: ``8``.
        init_std: standard deviation of the normal initialisation. Default: ``0.01`` (paper).
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 8, init_std: float = 0.01) -> None:
        _check_dim(self, "dim", dim)
        super().__init__(num_users, num_items, dim, init_std)


class MLPEncoder(MFEncoder):
    r"""NCF-MLP's input layer: separate tables :math:`\mathbf{p}_u, \mathbf{q}_i \in \mathbb{R}^{d}`.

    Identical in form to :class:`GMFEncoder`; the tables feed the tower of
    :class:`~graphcf.nn.scorers_ncf.MLPScorer` (same ``dim``), whose first layer sees
    :math:`[\mathbf{p}_u; \mathbf{q}_i] \in \mathbb{R}^{2d}`. For ``F`` predictive
    factors with ``L`` hidden layers use ``dim = mlp_embedding_dim(F, L)``
    (:math:`d = F \cdot 2^{L-1}`).

    Args:
        num_users, num_items: universe sizes.
        dim: per-side embedding size :math:`d`. Default: ``32`` (factors 8 with 3 layers).
        init_std: standard deviation of the normal initialisation. Default: ``0.01`` (paper).
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 32, init_std: float = 0.01) -> None:
        _check_dim(self, "dim", dim)
        super().__init__(num_users, num_items, dim, init_std)


class NeuMFEncoder(Encoder):
    r"""NeuMF's input layer: separate GMF and MLP tables, returned side by side.

    .. math::
        \mathbf{e}_u = [\mathbf{p}^G_u ; \mathbf{p}^M_u] \in \mathbb{R}^{d_G + d_M}, \qquad
        \mathbf{e}_i = [\mathbf{q}^G_i ; \mathbf{q}^M_i] \in \mathbb{R}^{d_G + d_M}

    The first ``gmf_dim`` columns are the GMF part, the last ``mlp_dim`` the MLP part;
    :class:`~graphcf.nn.scorers_ncf.NeuMFScorer` (same dims) splits them again. The
    two parts are separate tables, as in the paper (sharing them would limit fusion).
    Build from pretrained GMF / MLP with :func:`graphcf.nn.scorers_ncf.neumf_from_pretrained`.

    Args:
        num_users, num_items: universe sizes.
        gmf_dim: :math:`d_G`. Default: ``8``.
        mlp_dim: :math:`d_M`, per-side MLP embedding size. Default: ``32`` (factors 8, 3 layers).
        init_std: standard deviation of the normal initialisation. Default: ``0.01`` (paper).
    """

    def __init__(self, num_users: int, num_items: int, gmf_dim: int = 8, mlp_dim: int = 32,
                 init_std: float = 0.01) -> None:
        super().__init__(num_users, num_items)
        _check_dim(self, "gmf_dim", gmf_dim)
        _check_dim(self, "mlp_dim", mlp_dim)
        self.gmf_dim, self.mlp_dim = int(gmf_dim), int(mlp_dim)
        self.init_std = float(init_std)
        self.gmf_user_emb = nn.Embedding(num_users, self.gmf_dim)
        self.gmf_item_emb = nn.Embedding(num_items, self.gmf_dim)
        self.mlp_user_emb = nn.Embedding(num_users, self.mlp_dim)
        self.mlp_item_emb = nn.Embedding(num_items, self.mlp_dim)
        self.reset_parameters()

    @property
    def dim(self) -> int:
        """Width of the returned representations, ``gmf_dim + mlp_dim``."""
        return self.gmf_dim + self.mlp_dim

    def reset_parameters(self) -> None:
        for emb in (self.gmf_user_emb, self.gmf_item_emb, self.mlp_user_emb, self.mlp_item_emb):
            nn.init.normal_(emb.weight, std=self.init_std)

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        """``user [U, d_G + d_M]`` (or ``[B, ...]`` for ``users``) and ``item [I, d_G + d_M]``."""
        self.check_graph(data)
        if users is None:
            user = torch.cat([self.gmf_user_emb.weight, self.mlp_user_emb.weight], dim=1)
        else:
            user = torch.cat([self.gmf_user_emb(users), self.mlp_user_emb(users)], dim=1)
        item = torch.cat([self.gmf_item_emb.weight, self.mlp_item_emb.weight], dim=1)
        return UserItemEmbeddings(user, item)

    def extra_repr(self) -> str:
        return f"{self.num_users}, {self.num_items}, gmf_dim={self.gmf_dim}, mlp_dim={self.mlp_dim}"
