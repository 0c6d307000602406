"""The model registry used by the CLI: name -> encoder class, its scorer and default train settings.

* :data:`MODELS`: name -> encoder class.
* :data:`SCORERS`: name -> scorer class for models that bring their own scorer (the NCF
  family); every other model is scored with :class:`~graphcf.nn.scorers.DotScorer`.
* :data:`DEFAULT_TRAIN`: name -> ``train`` settings the model is meant to be trained
  with (e.g. NCF's pointwise log loss with 4 negatives); :func:`default_train_args`
  returns a copy for the CLI to merge *under* the user's ``train`` section.

``model_args`` go to the encoder and to the scorer: each receives the keys its
constructor accepts, so a shared key such as ``dim`` sets both (``{"dim": 16}`` for
``gmf`` builds ``GMFEncoder(dim=16)`` and ``GMFScorer(dim=16)``).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Mapping, Tuple, Type

from graphcf.config import check_kwargs, coerce_kwargs
from graphcf.nn.encoders import Encoder, LightGCNEncoder, MFEncoder, NGCFEncoder, PinSAGEEncoder, PopularityEncoder
from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder
from graphcf.nn.encoders.vae import MultDAEEncoder, MultVAEEncoder
from graphcf.nn.scorers import CosineScorer, DotScorer, Scorer
from graphcf.nn.scorers_ncf import GMFScorer, MLPScorer, NeuMFScorer

MODELS: Dict[str, Type[Encoder]] = {
    "popularity": PopularityEncoder,
    "mf": MFEncoder,
    "gmf": GMFEncoder,
    "mlp": MLPEncoder,
    "neumf": NeuMFEncoder,
    "multvae": MultVAEEncoder,
    "multdae": MultDAEEncoder,
    "lightgcn": LightGCNEncoder,
    "ngcf": NGCFEncoder,
    "pinsage": PinSAGEEncoder,
}

#: Models with their own scorer (built from the ``model_args`` its constructor accepts).
SCORERS: Dict[str, Type[Scorer]] = {
    "gmf": GMFScorer,
    "mlp": MLPScorer,
    "neumf": NeuMFScorer,
}

#: ``model_args["scorer"]`` of the models without their own scorer: name -> scorer class.
#: ``"cosine"`` scores by the cosine of the output embeddings (use it with ``loss: softmax``,
#: whose ``temperature`` then scales cosines in [-1, 1]; evaluation ranks by the same cosine).
GENERIC_SCORERS: Dict[str, Type[Scorer]] = {"dot": DotScorer, "cosine": CosineScorer}

_NCF_TRAIN: Dict[str, Any] = {"loss": "bce", "num_negatives": 4, "batch_size": 256, "lr": 1e-3,
                              "reg": 0.0, "optimizer": "adam"}

#: ``train`` settings of each model's reference setup (paper defaults); models not listed have none.
DEFAULT_TRAIN: Dict[str, Dict[str, Any]] = {
    "gmf": dict(_NCF_TRAIN),
    "mlp": dict(_NCF_TRAIN),
    "neumf": dict(_NCF_TRAIN),
    # Liang et al. 2018: 200 epochs, batches of 500 users, Adam 1e-3, best epoch by val NDCG@100;
    # the VAE anneals beta = min(0.2, step / 200k), the DAE uses beta = 1 (its optional L2 `lam`).
    "multvae": {"loss": "multinomial", "batch_size": 500, "lr": 1e-3, "epochs": 200, "patience": 0,
                "metric": "ndcg@100", "anneal_steps": 200_000, "anneal_cap": 0.2},
    "multdae": {"loss": "multinomial", "batch_size": 500, "lr": 1e-3, "epochs": 200, "patience": 0,
                "metric": "ndcg@100", "anneal_steps": 0, "anneal_cap": 1.0},
    # He et al. 2020 (official code): BPR, batch 2048, Adam 1e-3, L2 1e-4 on the batch's ego embeddings
    "lightgcn": {"loss": "bpr", "batch_size": 2048, "lr": 1e-3, "reg": 1e-4, "num_negatives": 1},
    # Wang et al. 2019 (official run script): BPR, batch 1024, Adam 1e-4, L2 1e-5 on the batch's outputs
    "ngcf": {"loss": "bpr", "batch_size": 1024, "lr": 1e-4, "reg": 1e-5, "num_negatives": 1},
    # Ying et al. 2018: max-margin loss on the (unit-norm) embeddings' cosine scores, negatives shared by
    # the mini-batch (500 in the paper). citeulike validation, 10 epochs: lr 5e-3 beat 2e-2 (recall@20
    # .059 vs .043) and margin 0.1 beat 0.5 (.059 vs .043); sampled softmax (tau 0.1) reached .071, BPR .025
    "pinsage": {"loss": "margin", "margin": 0.1, "batch_size": 2048, "lr": 5e-3, "reg": 0.0,
                "num_negatives": 500, "sampler": "shared"},
}


def _accepted(fn: Callable[..., Any], skip: Tuple[str, ...] = ()) -> Dict[str, inspect.Parameter]:
    params = inspect.signature(fn).parameters
    return {n: p for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self" and n not in skip}


def _check_model_args(name: str, cls: Type[Encoder], scorer_cls: Type[Scorer] | None,
                      args: Mapping[str, Any]) -> None:
    """``check_kwargs`` against the encoder constructor, or against encoder + scorer constructors."""
    where = f"model_args for {name!r}"
    skip = ("num_users", "num_items")
    if scorer_cls is None:
        check_kwargs(cls.__init__, args, where, skip=skip)
        return

    def target() -> None:  # pragma: no cover - only its signature is read
        """Stand-in whose signature is the union of the encoder's and the scorer's keyword arguments."""

    merged = {**_accepted(scorer_cls.__init__), **_accepted(cls.__init__, skip=skip)}
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in merged.values()]
    target.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    target.__name__ = f"{cls.__name__} + {scorer_cls.__name__}"
    check_kwargs(target, args, where)


def build_model(name: str, num_users: int, num_items: int,
                model_args: Mapping[str, Any] | None = None) -> Tuple[Encoder, Scorer]:
    """Instantiate encoder ``name`` and its scorer with ``model_args`` (checked against their constructors).

    Models in :data:`SCORERS` get that scorer, built from the ``model_args`` keys its
    constructor accepts (keys accepted by both go to both); the others get the scorer named by
    ``model_args["scorer"]`` (:data:`GENERIC_SCORERS`: ``"dot"``, the default, a
    :class:`~graphcf.nn.scorers.DotScorer`; ``"cosine"``, a
    :class:`~graphcf.nn.scorers.CosineScorer`).

    Raises:
        ValueError: unknown model, unknown ``scorer``, ``scorer`` given to a model with its own,
            or ``model_args`` keys neither constructor accepts.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    cls = MODELS[name]
    scorer_cls = SCORERS.get(name)
    args = dict(model_args or {})
    if scorer_cls is not None and "scorer" in args:
        raise ValueError(f"model_args for {name!r}: 'scorer' is not configurable, {name!r} brings "
                         f"its own {scorer_cls.__name__}")
    generic = args.pop("scorer", "dot")
    if generic not in GENERIC_SCORERS:
        raise ValueError(f"model_args for {name!r}: scorer must be one of {sorted(GENERIC_SCORERS)}, "
                         f"got {generic!r}")
    _check_model_args(name, cls, scorer_cls, args)
    where = f"model_args for {name!r}"
    if scorer_cls is not None:
        args = coerce_kwargs(scorer_cls.__init__, args, where)
    args = coerce_kwargs(cls.__init__, args, where)
    if scorer_cls is None:
        return cls(num_users, num_items, **args), GENERIC_SCORERS[generic]()
    enc_keys = _accepted(cls.__init__, skip=("num_users", "num_items"))
    sc_keys = _accepted(scorer_cls.__init__)
    encoder = cls(num_users, num_items, **{k: v for k, v in args.items() if k in enc_keys})
    scorer = scorer_cls(**{k: v for k, v in args.items() if k in sc_keys})
    return encoder, scorer


def default_train_args(name: str) -> Dict[str, Any]:
    """A copy of the model's default ``train`` settings (:data:`DEFAULT_TRAIN`; ``{}`` if it has none).

    Meant to be merged *under* the user's ``train`` section:
    ``{**default_train_args(name), **cfg["train"]}``.

    Raises:
        ValueError: for an unknown model name.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    return dict(DEFAULT_TRAIN.get(name, {}))
