r"""Mult-VAE and Mult-DAE (Liang et al., "Variational Autoencoders for Collaborative
Filtering", WWW 2018, arXiv:1802.05814) as zero-hop encoders.

Both models read a user's *row* of the training graph, :math:`\mathbf{x}_u \in \{0, 1\}^I`
(the items the user interacted with), and output logits over all items:

.. math::
    \tilde{\mathbf{x}}_u = \operatorname{dropout}_p\!\Big(\frac{\mathbf{x}_u}{\lVert \mathbf{x}_u \rVert_2}\Big),
    \qquad
    \mathbf{h}_u = f_\theta(\mathbf{z}_u),
    \qquad
    \boldsymbol{\pi}_u = \operatorname{softmax}(\mathbf{W} \mathbf{h}_u + \mathbf{b}),

where :math:`f_\theta` is the tanh decoder MLP up to its last hidden layer and
:math:`\mathbf{W} \in \mathbb{R}^{I \times h}`, :math:`\mathbf{b} \in \mathbb{R}^{I}` is the
final decoder layer. Mult-VAE encodes :math:`\tilde{\mathbf{x}}_u` into a Gaussian
:math:`q_\phi(\mathbf{z}_u \mid \mathbf{x}_u) = \mathcal{N}(\boldsymbol{\mu}_u, \operatorname{diag}\boldsymbol{\sigma}_u^2)`
and samples :math:`\mathbf{z}_u = \boldsymbol{\mu}_u + \boldsymbol{\sigma}_u \odot \boldsymbol{\epsilon}`,
:math:`\boldsymbol{\epsilon} \sim \mathcal{N}(\mathbf{0}, \mathbf{I})` (training mode only; the mean in
eval mode). Mult-DAE maps :math:`\tilde{\mathbf{x}}_u` deterministically to :math:`\mathbf{z}_u`.

**Zero-hop interface.** The final decoder layer is exposed as the item embeddings and the
last hidden layer (with a constant 1 appended) as the user embeddings,

.. math::
    \mathbf{e}_i = [\mathbf{W}_i \,|\, b_i] \in \mathbb{R}^{h + 1}, \qquad
    \mathbf{e}_u = [\mathbf{h}_u \,|\, 1] \in \mathbb{R}^{h + 1}, \qquad
    \mathbf{e}_u^\top \mathbf{e}_i = \mathbf{W}_i^\top \mathbf{h}_u + b_i,

so the plain :class:`~graphcf.nn.scorers.DotScorer` returns exactly the decoder logits
and the shared trainer, :class:`~graphcf.objectives.MultinomialObjective` (the
multinomial likelihood :math:`-\sum_i x_{ui} \log \pi_{ui}`), evaluator and top-K code
work unchanged. The graph stays a forward input: the user rows are read from
``data[INTERACTS].edge_index`` on every call (the CSR built from it is cached, keyed on
the tensor's storage, shape and version).

**Fold-in.** :meth:`_MultAutoencoder.encode_history` encodes the history of users that
are not in the training graph (new users) into the same ``[h_u | 1]`` representation,
so they get recommendations without retraining.

Memory: the input layer is a sparse-row product (``embedding_bag`` over each row's items),
so no dense ``[B, I]`` input block is ever built; all users are encoded in chunks of
``chunk_size`` rows.
"""
from __future__ import annotations

import logging
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from graphcf.data.build import user_item_csr
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.sparse import csr_row_positions
from graphcf.typing import UserItemEmbeddings

logger = logging.getLogger(__name__)

__all__ = ["MultVAEEncoder", "MultDAEEncoder"]

#: :math:`\epsilon` of the row L2 normalisation :math:`\mathbf{x} / \max(\lVert\mathbf{x}\rVert_2, \epsilon)`.
_NORM_EPS = 1e-12


class _Rows(NamedTuple):
    """``B`` sparse rows in CSR form: ``crow [B+1]`` (starting at 0), ``col [nnz]``, ``val [nnz]`` or ``None`` (all ones)."""

    crow: Tensor
    col: Tensor
    val: Optional[Tensor]

    @property
    def num_rows(self) -> int:
        return int(self.crow.numel()) - 1

    def slice(self, start: int, stop: int) -> "_Rows":
        """Rows ``start:stop`` (re-based to start at 0)."""
        crow = self.crow[start : stop + 1]
        lo, hi = int(crow[0]), int(crow[-1])
        return _Rows(crow - lo, self.col[lo:hi], None if self.val is None else self.val[lo:hi])


def _gather_rows(crow: Tensor, col: Tensor, rows: Tensor) -> _Rows:
    """The CSR rows ``rows`` (any order, repeats allowed) of ``(crow, col)`` as a new :class:`_Rows`."""
    local, pos = csr_row_positions(crow, rows)
    new_crow = torch.zeros(rows.numel() + 1, dtype=torch.long, device=crow.device)
    torch.cumsum(crow[rows + 1] - crow[rows], 0, out=new_crow[1:])
    return _Rows(new_crow, col[pos], None)


def _history_rows(rows: Any, num_items: int, device: torch.device) -> _Rows:
    """Convert a history matrix (torch sparse CSR / COO, dense tensor, numpy or scipy.sparse) to :class:`_Rows`."""
    if hasattr(rows, "tocsr") and not isinstance(rows, Tensor):  # scipy.sparse
        m = rows.tocsr()
        shape = tuple(m.shape)
        crow = torch.as_tensor(m.indptr.astype("int64"))
        col = torch.as_tensor(m.indices.astype("int64"))
        val = torch.as_tensor(m.data)
    else:
        t = rows if isinstance(rows, Tensor) else torch.as_tensor(rows)
        if t.dim() != 2:
            raise ValueError(f"encode_history: expected a 2-D [B, I] history, got shape {tuple(t.shape)}")
        shape = tuple(t.shape)
        if t.layout == torch.sparse_csr:
            crow, col, val = t.crow_indices(), t.col_indices(), t.values()
        elif t.layout in (torch.sparse_coo, torch.strided):
            if t.layout == torch.sparse_coo:
                t = t.coalesce()  # sorted row-major
                (row, col), val = t.indices(), t.values()
            else:
                row, col = t.nonzero(as_tuple=True)  # row-major order
                val = t[row, col]
            crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=row.device)
            torch.cumsum(torch.bincount(row, minlength=shape[0]), 0, out=crow[1:])
        else:
            raise TypeError(f"encode_history: unsupported layout {t.layout}; use sparse CSR/COO or dense")
    if len(shape) != 2 or shape[1] != num_items:
        raise ValueError(f"encode_history: history must be [B, {num_items}] (one column per item), got {shape}")
    if not val.is_floating_point():
        val = val.float()
    return _Rows(crow.to(device=device, dtype=torch.long), col.to(device=device, dtype=torch.long),
                 val.to(device=device))


class _MultAutoencoder(Encoder):
    r"""Shared machinery of :class:`MultVAEEncoder` and :class:`MultDAEEncoder`.

    Layers: a sparse input layer :math:`I \to d_1` (``in_weight [I, d_1]``, ``in_bias``),
    the rest of the encoder MLP (``encoder_layers``), the decoder MLP up to the last hidden
    layer (``decoder_layers``, tanh after each) and the output layer ``out``
    (:math:`\mathbf{W}` = ``out.weight [I, h]``, :math:`\mathbf{b}` = ``out.bias [I]``).
    Weights use Glorot-uniform and biases :math:`\mathcal{N}(0, 0.001^2)` truncated at two
    standard deviations, as in the authors' code.

    Subclasses implement :meth:`_latent` (encoder output -> latent code) and
    :meth:`_aux_loss`.
    """

    def __init__(self, num_users: int, num_items: int, hidden_dims: Sequence[int], latent_dim: int,
                 dropout: float, encoder_out_dim: int, tanh_last_encoder_layer: bool,
                 seed: Optional[int], generator: Optional[torch.Generator], chunk_size: int) -> None:
        super().__init__(num_users, num_items)
        hidden = [int(h) for h in hidden_dims]
        if any(h < 1 for h in hidden) or latent_dim < 1:
            raise ValueError(f"{type(self).__name__}: hidden_dims and latent_dim must be positive, "
                             f"got {hidden_dims}, {latent_dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout}")
        if chunk_size < 1:
            raise ValueError(f"{type(self).__name__}: chunk_size must be >= 1, got {chunk_size}")
        if seed is not None and generator is not None:
            raise ValueError(f"{type(self).__name__}: give seed or generator, not both")
        self.hidden_dims: Tuple[int, ...] = tuple(hidden)
        self.latent_dim = int(latent_dim)
        self.dropout = float(dropout)
        self.chunk_size = int(chunk_size)
        self.tanh_last_encoder_layer = tanh_last_encoder_layer
        self.generator: Optional[torch.Generator] = generator
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))

        enc_dims = [num_items, *hidden, int(encoder_out_dim)]
        self.in_weight = nn.Parameter(torch.empty(num_items, enc_dims[1]))
        self.in_bias = nn.Parameter(torch.empty(enc_dims[1]))
        self.encoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(enc_dims[1:-1], enc_dims[2:]))
        dec_dims = [self.latent_dim, *reversed(hidden)]
        self.decoder_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec_dims[:-1], dec_dims[1:]))
        self.out = nn.Linear(dec_dims[-1], num_items)
        # CSR of the last training graph seen (not state: rebuilt from the forward input)
        self._csr_key: Optional[Tuple[Any, ...]] = None
        self._csr_source: Optional[Tensor] = None  # keeps the keyed tensor alive so its data_ptr is not reused
        self._csr: Optional[Tuple[Tensor, Tensor]] = None
        self.reset_parameters()

    # -- parameters -----------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        """:math:`h`, the size of the last decoder hidden layer (user/item embeddings have ``h + 1``)."""
        return self.out.in_features

    def weight_matrices(self) -> List[Tensor]:
        """All weight matrices (no biases): input, encoder, decoder and output layers."""
        return [self.in_weight, *(m.weight for m in self.encoder_layers),
                *(m.weight for m in self.decoder_layers), self.out.weight]

    def reset_parameters(self) -> None:
        for w in self.weight_matrices():
            nn.init.xavier_uniform_(w)
        for b in [self.in_bias, *(m.bias for m in self.encoder_layers),
                  *(m.bias for m in self.decoder_layers), self.out.bias]:
            nn.init.trunc_normal_(b, std=0.001, a=-0.002, b=0.002)

    # -- randomness (own generator, saved in state_dict) ----------------------
    def _rand(self, n: int, like: Tensor, normal: bool = False) -> Tensor:
        g = self.generator
        fn = torch.randn if normal else torch.rand
        if g is None:
            return fn(n, device=like.device, dtype=like.dtype)
        return fn(n, generator=g, device=g.device, dtype=like.dtype).to(like.device)

    def get_extra_state(self) -> Tensor:
        """The own generator's state (an empty tensor without one), so checkpoints resume the same noise."""
        if self.generator is None:
            return torch.zeros(0, dtype=torch.uint8)
        return self.generator.get_state()

    def set_extra_state(self, state: Any) -> None:
        if self.generator is not None and isinstance(state, Tensor) and state.numel() > 0:
            self.generator.set_state(state.detach().to("cpu", torch.uint8))

    # -- the training graph as CSR rows ----------------------------------------
    def _train_rows(self, edge_index: Tensor) -> Tuple[Tensor, Tensor]:
        """``(crow [U+1], col)`` of the binary user x item matrix of ``edge_index`` (cached)."""
        device = self.in_weight.device
        key = (edge_index.data_ptr(), tuple(edge_index.shape), tuple(edge_index.stride()),
               edge_index._version, str(edge_index.device), str(device), self.num_users, self.num_items)
        if self._csr is None or self._csr_key != key:
            csr = user_item_csr(edge_index.detach().long().cpu(), self.num_users, self.num_items)
            self._csr = (csr.crow_indices().to(device), csr.col_indices().to(device))
            self._csr_key, self._csr_source = key, edge_index
            logger.debug("%s: built user rows of %d training edges", type(self).__name__, int(csr.values().numel()))
        return self._csr

    # -- the network -----------------------------------------------------------
    def _latent(self, enc: Tensor) -> Tuple[Tensor, Optional[Tensor]]:  # pragma: no cover - abstract
        """Encoder output -> ``(z [B, latent], per-row KL [B] or None)``."""
        raise NotImplementedError

    def _aux_loss(self, kl_sum: Optional[Tensor], num_rows: int) -> Optional[Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _encode(self, rows: _Rows) -> Tuple[Tensor, Optional[Tensor]]:
        """``B`` rows -> ``(h [B, h], summed KL or None)``; dropout and sampling only in training mode."""
        w = self.in_weight
        b, nnz = rows.num_rows, int(rows.col.numel())
        counts = rows.crow[1:] - rows.crow[:-1]
        val = torch.ones(nnz, dtype=w.dtype, device=w.device) if rows.val is None else rows.val.to(w.dtype)
        row_of = torch.repeat_interleave(torch.arange(b, device=w.device), counts, output_size=nnz)
        norm = torch.zeros(b, dtype=w.dtype, device=w.device).index_add_(0, row_of, val * val).sqrt_()
        val = val / norm.clamp_min(_NORM_EPS)[row_of]
        if self.training and self.dropout > 0 and nnz:
            keep = self._rand(nnz, val) >= self.dropout
            val = val * keep.to(val.dtype) / (1.0 - self.dropout)
        x = F.embedding_bag(rows.col, w, rows.crow[:-1], mode="sum", per_sample_weights=val) + self.in_bias
        n_enc = 1 + len(self.encoder_layers)
        for k in range(n_enc):
            if k > 0:
                x = self.encoder_layers[k - 1](x)
            if k < n_enc - 1 or self.tanh_last_encoder_layer:
                x = torch.tanh(x)
        z, kl = self._latent(x)
        for layer in self.decoder_layers:
            z = torch.tanh(layer(z))
        return z, (None if kl is None else kl.sum())

    def _encode_chunks(self, rows: _Rows) -> Tuple[Tensor, Optional[Tensor]]:
        hs, kl_total = [], None
        for s in range(0, rows.num_rows, self.chunk_size):
            h, kl = self._encode(rows.slice(s, min(s + self.chunk_size, rows.num_rows)))
            hs.append(h)
            if kl is not None:
                kl_total = kl if kl_total is None else kl_total + kl
        if not hs:
            return self.in_bias.new_zeros(0, self.hidden_size), None
        return torch.cat(hs), kl_total

    @staticmethod
    def _with_one(h: Tensor) -> Tensor:
        return torch.cat([h, h.new_ones(h.shape[0], 1)], dim=1)

    def item_embeddings(self) -> Tensor:
        r"""``[I, h + 1]`` item embeddings :math:`[\mathbf{W} \,|\, \mathbf{b}]` (the final decoder layer)."""
        return torch.cat([self.out.weight, self.out.bias.unsqueeze(1)], dim=1)

    def forward(self, data: HeteroData, users: Optional[Tensor] = None) -> UserItemEmbeddings:
        r"""User representations :math:`[\mathbf{h}_u | 1]` from each user's training row, and items :math:`[\mathbf{W} | \mathbf{b}]`.

        Args:
            data: the training graph; user rows are read from ``data[INTERACTS].edge_index``.
            users: ``[B]`` user indices (any order, repeats allowed), or ``None`` for all
                users (encoded in chunks of ``chunk_size`` rows).

        Returns:
            ``UserItemEmbeddings(user [B or U, h+1], item [I, h+1], aux_loss)``; ``aux_loss``
            is the model's auxiliary loss (see the subclasses).
        """
        crow, col = self._train_rows(self.check_graph(data))
        if users is None:
            rows = _Rows(crow, col, None)
        else:
            users = users.to(crow.device).long().flatten()
            if users.numel() and (int(users.min()) < 0 or int(users.max()) >= self.num_users):
                raise IndexError(f"{type(self).__name__}: user index out of range 0..{self.num_users - 1}")
            rows = _gather_rows(crow, col, users)
        h, kl_sum = self._encode_chunks(rows)
        aux = self._aux_loss(kl_sum, rows.num_rows)
        return UserItemEmbeddings(self._with_one(h), self.item_embeddings(),
                                  None if aux is None else {self.aux_name: aux})

    def encode_history(self, rows: Any) -> Tensor:
        r"""Fold-in: representations :math:`[\mathbf{h}_u | 1]` ``[B, h+1]`` of users given by their history.

        The users need not be in the training graph: their rows go through the same encoder
        and decoder, so ``DotScorer().score_all(enc.encode_history(x), enc.item_embeddings())``
        are their decoder logits. Like :meth:`forward` this follows the module's mode: call
        ``.eval()`` first for deterministic (dropout-free, mean-latent) representations.

        Args:
            rows: ``[B, I]`` history: a torch sparse CSR or COO tensor, a dense tensor or
                array, or a ``scipy.sparse`` matrix. Values are used as given (0/1 for
                implicit feedback) and L2-normalised per row.
        """
        return self._with_one(self._encode_chunks(_history_rows(rows, self.num_items, self.in_weight.device))[0])

    def extra_repr(self) -> str:
        return (f"{self.num_users}, {self.num_items}, hidden_dims={self.hidden_dims}, "
                f"latent_dim={self.latent_dim}, dropout={self.dropout}")


class MultVAEEncoder(_MultAutoencoder):
    r"""Mult-VAE (Liang et al., WWW 2018) as a zero-hop encoder; see the module docstring.

    Encoder :math:`g_\phi` (tanh MLP ``I -> hidden_dims -> 2 * latent_dim``, linear last layer):

    .. math::
        [\boldsymbol{\mu}_u, \log \boldsymbol{\sigma}_u^2] = g_\phi(\tilde{\mathbf{x}}_u), \qquad
        \mathbf{z}_u = \boldsymbol{\mu}_u + \boldsymbol{\sigma}_u \odot \boldsymbol{\epsilon}\ \text{(training)},
        \quad \mathbf{z}_u = \boldsymbol{\mu}_u\ \text{(eval)},

    decoder ``latent_dim -> reversed(hidden_dims)`` (tanh) then the output layer to ``I``
    (paper: ``[I, 600, 200, 600, I]``, i.e. the defaults). ``aux_loss`` is the batch mean of

    .. math::
        \mathrm{KL}\big(q_\phi(\mathbf{z}_u \mid \mathbf{x}_u) \,\|\, \mathcal{N}(\mathbf{0}, \mathbf{I})\big)
        = \tfrac12 \sum_{k} \big(\sigma_{uk}^2 + \mu_{uk}^2 - 1 - \log \sigma_{uk}^2\big),

    which :class:`~graphcf.objectives.MultinomialObjective` weights by the annealed
    :math:`\beta = \min(0.2, t / 200{,}000)` after :math:`t` updates (paper).

    Args:
        num_users, num_items: universe sizes.
        hidden_dims: encoder hidden sizes (the decoder mirrors them). Default ``(600,)``.
        latent_dim: size of :math:`\mathbf{z}`. Default ``200``.
        dropout: input dropout rate :math:`p` (training mode only). Default ``0.5``.
        seed: seeds an own ``torch.Generator`` for dropout and :math:`\boldsymbol{\epsilon}`;
            its state is part of ``state_dict``, so a resumed checkpoint continues the
            same noise. Default ``None``: use ``generator``, else torch's default RNG.
        generator: an own generator to use instead of ``seed``.
        chunk_size: users per chunk when all users are encoded. Default ``2048``.
    """

    def __init__(self, num_users: int, num_items: int, hidden_dims: Sequence[int] = (600,), latent_dim: int = 200,
                 dropout: float = 0.5, seed: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 chunk_size: int = 2048) -> None:
        super().__init__(num_users, num_items, hidden_dims, latent_dim, dropout, 2 * int(latent_dim), False,
                         seed, generator, chunk_size)

    def _latent(self, enc: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        mu, logvar = enc[:, : self.latent_dim], enc[:, self.latent_dim :]
        kl = 0.5 * (logvar.exp() + mu * mu - 1.0 - logvar).sum(dim=1)
        if self.training:
            eps = self._rand(mu.numel(), mu, normal=True).view_as(mu)
            return mu + eps * torch.exp(0.5 * logvar), kl
        return mu, kl

    #: name of the auxiliary loss (the objective anneals the weight of ``kl``)
    aux_name = "kl"
    aux_losses = ("kl",)

    def _aux_loss(self, kl_sum: Optional[Tensor], num_rows: int) -> Optional[Tensor]:
        if kl_sum is None:
            return self.in_bias.new_zeros(())
        return kl_sum / max(num_rows, 1)


class MultDAEEncoder(_MultAutoencoder):
    r"""Mult-DAE (Liang et al., WWW 2018) as a zero-hop encoder; see the module docstring.

    Deterministic tanh MLP ``I -> hidden_dims -> latent_dim -> reversed(hidden_dims)`` (tanh
    after every layer, paper: ``[I, 600, 200, 600, I]``), then the output layer to ``I``;
    denoising comes from the input dropout only. There is no KL term.

    ``aux_loss`` is ``None`` unless ``lam > 0``; then it is the paper's L2 weight penalty
    on all weight matrices (biases excluded),

    .. math::
        \Omega = \lambda \sum_{l} \lVert \mathbf{W}_l \rVert_F^2,

    (the authors used :math:`\lambda = 0.01 / \text{batch size}`, i.e. ``2e-5`` for batches
    of 500 users). It is named ``l2`` in ``aux``: the objectives add it with weight 1 (or
    ``aux_weights["l2"]``); only the ``kl`` term of Mult-VAE follows the annealed :math:`\beta`.

    Args:
        num_users, num_items: universe sizes.
        hidden_dims: encoder hidden sizes (the decoder mirrors them). Default ``(600,)``.
        latent_dim: size of the bottleneck. Default ``200``.
        dropout: input dropout rate (training mode only). Default ``0.5``.
        lam: :math:`\lambda` of the weight penalty. Default ``0.0`` (none).
        seed, generator, chunk_size: as in :class:`MultVAEEncoder`.
    """

    def __init__(self, num_users: int, num_items: int, hidden_dims: Sequence[int] = (600,), latent_dim: int = 200,
                 dropout: float = 0.5, lam: float = 0.0, seed: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, chunk_size: int = 2048) -> None:
        if lam < 0:
            raise ValueError(f"MultDAEEncoder: lam must be >= 0, got {lam}")
        super().__init__(num_users, num_items, hidden_dims, latent_dim, dropout, int(latent_dim), True,
                         seed, generator, chunk_size)
        self.lam = float(lam)

    def _latent(self, enc: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        return enc, None

    #: name of the auxiliary loss (weight 1 unless ``aux_weights`` says otherwise)
    aux_name = "l2"
    aux_losses = ("l2",)

    def _aux_loss(self, kl_sum: Optional[Tensor], num_rows: int) -> Optional[Tensor]:
        if self.lam <= 0:
            return None
        return self.lam * sum(w.pow(2).sum() for w in self.weight_matrices())  # type: ignore[return-value]

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", lam={self.lam}" if self.lam else "")
