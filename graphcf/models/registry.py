"""The model registry: every model declared once (class, scorer, default training settings, summary).

:data:`MODELS` maps a name to a :class:`ModelSpec`; the CLI's ``--model`` choices and its ``--help``
come from it, and :func:`make_model` builds the :class:`~graphcf.model.Recommender` a config names.

* A trained model registers its :class:`~graphcf.nn.encoders.base.Encoder` class (and, when it brings
  one, its own scorer class); :func:`make_model` wraps them as a :class:`~graphcf.model.FactorModel`.
  ``model_args`` go to the encoder and to the scorer: each receives the keys its constructor accepts,
  so a shared key such as ``dim`` sets both. Models without their own scorer take
  ``model_args.scorer``: ``dot`` (default) or ``cosine`` (:data:`GENERIC_SCORERS`).
* A training-free model registers its :class:`~graphcf.model.TrainingFreeModel` class; ``model_args``
  go to its constructor.

``train`` holds the model's default ``train`` settings and ``objective`` its default objective
(``{"name": ..., **settings}``), both merged *under* the user's config.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Type

from graphcf.config import check_kwargs, coerce_kwargs
from graphcf.model import FactorModel, Recommender, TrainingFreeModel
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import CosineScorer, DotScorer, Scorer

__all__ = ["ModelSpec", "MODELS", "GENERIC_SCORERS", "register_model", "make_model", "build_model", "model_spec",
           "default_train_args", "default_sections", "resolve_sections"]

#: ``model_args["scorer"]`` of the models without their own scorer: name -> scorer class.
GENERIC_SCORERS: Dict[str, Type[Scorer]] = {"dot": DotScorer, "cosine": CosineScorer}


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
        name: the registry name (``--model``).
        cls: an :class:`Encoder` subclass (trained) or a :class:`Recommender` subclass (training-free).
        scorer: the model's own scorer class, or ``None`` (generic ``dot`` / ``cosine``).
        train: default ``train`` settings (paper defaults), merged under the user's.
        objective: default objective, ``{"name": ..., **settings}`` (``{}``: the config's, BPR by default).
        summary: one line for ``--help`` and ``graphcf models``.
    """

    name: str
    cls: type
    scorer: Optional[Type[Scorer]] = None
    train: Mapping[str, Any] = field(default_factory=dict)
    objective: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""

    @property
    def training_free(self) -> bool:
        return issubclass(self.cls, TrainingFreeModel)

    def build(self, num_users: int, num_items: int, model_args: Optional[Mapping[str, Any]] = None) -> Recommender:
        """The model, with ``model_args`` checked against the constructors (unknown keys list the valid ones)."""
        args = dict(model_args or {})
        where = f"model_args for {self.name!r}"
        if not issubclass(self.cls, Encoder):
            check_kwargs(self.cls.__init__, args, where, skip=("num_users", "num_items"))
            return self.cls(num_users, num_items, **coerce_kwargs(self.cls.__init__, args, where))
        encoder, scorer = self.build_parts(num_users, num_items, args)
        return FactorModel(encoder, scorer)

    def build_parts(self, num_users: int, num_items: int,
                    model_args: Optional[Mapping[str, Any]] = None) -> Tuple[Encoder, Scorer]:
        """``(encoder, scorer)`` of a trained model (see the module docstring)."""
        if not issubclass(self.cls, Encoder):
            raise ValueError(f"model {self.name!r} is training-free ({self.cls.__name__}); it has no encoder/scorer "
                             "pair: use make_model")
        cls, scorer_cls = self.cls, self.scorer
        args = dict(model_args or {})
        where = f"model_args for {self.name!r}"
        if scorer_cls is not None and "scorer" in args:
            raise ValueError(f"{where}: 'scorer' is not configurable, {self.name!r} brings its own "
                             f"{scorer_cls.__name__}")
        generic = args.pop("scorer", "dot")
        if generic not in GENERIC_SCORERS:
            raise ValueError(f"{where}: scorer must be one of {sorted(GENERIC_SCORERS)}, got {generic!r}")
        _check_args(self.name, cls, scorer_cls, args)
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


#: name -> :class:`ModelSpec`, filled by :func:`register_model`.
MODELS: Dict[str, ModelSpec] = {}


def register_model(name: str, cls: type, scorer: Optional[Type[Scorer]] = None,
                   train: Optional[Mapping[str, Any]] = None, objective: Optional[Mapping[str, Any]] = None,
                   summary: str = "") -> ModelSpec:
    """Declare model ``name`` (see :class:`ModelSpec`); returns the spec. Re-registering a name replaces it."""
    if not (isinstance(cls, type) and (issubclass(cls, Encoder) or issubclass(cls, Recommender))):
        raise TypeError(f"register_model({name!r}): cls must be an Encoder or Recommender subclass, got {cls!r}")
    if scorer is not None and not issubclass(cls, Encoder):
        raise TypeError(f"register_model({name!r}): only an encoder model takes a scorer")
    spec = ModelSpec(name, cls, scorer, dict(train or {}), dict(objective or {}), summary)
    MODELS[name] = spec
    return spec


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    return MODELS[name]


def make_model(name: str, num_users: int, num_items: int,
               model_args: Optional[Mapping[str, Any]] = None) -> Recommender:
    """The :class:`~graphcf.model.Recommender` registered as ``name``, built with ``model_args``."""
    return model_spec(name).build(num_users, num_items, model_args)


def build_model(name: str, num_users: int, num_items: int,
                model_args: Optional[Mapping[str, Any]] = None) -> Tuple[Encoder, Scorer]:
    """``(encoder, scorer)`` of trained model ``name`` (a training-free model raises ``ValueError``)."""
    return model_spec(name).build_parts(num_users, num_items, model_args)


def default_sections(name: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Copies of the model's default ``(train, objective)`` sections."""
    spec = model_spec(name)
    return dict(spec.train), dict(spec.objective)


def resolve_sections(name: str, train: Optional[Mapping[str, Any]] = None,
                     objective: Optional[Mapping[str, Any]] = None, loss: Optional[str] = None,
                     where: str = "config") -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The ``(train, objective)`` sections of a run of model ``name``: the model's defaults under the
    user's ``train`` and ``objective`` sections (and ``loss``, e.g. a ``--loss`` flag, over both).

    The objective is ``loss``, else ``objective.name``, else ``train.loss``, else the model's default,
    else ``bpr``. The model's default objective settings apply when its objective is the chosen one;
    for another objective, those of its keys the chosen one also has (PinSAGE's shared negatives carry
    to ``softmax``, its ``margin`` does not). Objective settings written flat in ``train`` (the older
    layout) move into ``objective`` with a warning giving the new spelling. The returned ``train`` has no
    ``loss``; the returned ``objective`` has ``name``.
    """
    from graphcf.objectives import OBJECTIVES
    from graphcf.train import TrainConfig

    spec_train, spec_obj = default_sections(name)
    user_train, user_obj = dict(train or {}), dict(objective or {})
    given = [v for v in (user_obj.get("name"), user_train.get("loss")) if v is not None]
    if loss is None and len(set(given)) > 1:
        raise ValueError(f"{where}: objective.name={user_obj.get('name')!r} and train.loss="
                         f"{user_train.get('loss')!r} disagree; give one of them")
    chosen = loss or (given[0] if given else None) or spec_obj.get("name") or "bpr"
    if chosen not in OBJECTIVES:
        raise ValueError(f"{where}: unknown objective {chosen!r}; valid: {sorted(OBJECTIVES)}")
    fields = set(OBJECTIVES[chosen].settings_fields())
    obj = {k: v for k, v in spec_obj.items() if k != "name" and (spec_obj.get("name") == chosen or k in fields)}
    user_train.pop("loss", None)
    obj.update(TrainConfig.legacy_objective_keys(user_train, chosen, where=f"{where}: train"))
    obj.update({k: v for k, v in user_obj.items() if k != "name"})
    return {**spec_train, **user_train}, {"name": chosen, **obj}


def default_train_args(name: str) -> Dict[str, Any]:
    """The model's defaults as one flat ``train`` mapping (``loss`` plus the objective's settings), the
    layout :meth:`graphcf.train.TrainConfig.from_flat` reads; ``{}`` when the model has none."""
    train, obj = default_sections(name)
    obj = dict(obj)
    if "name" in obj:
        train["loss"] = obj.pop("name")
    return {**train, **obj}


def _accepted(fn: Callable[..., Any], skip: Tuple[str, ...] = ()) -> Dict[str, inspect.Parameter]:
    params = inspect.signature(fn).parameters
    return {n: p for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self" and n not in skip}


def _check_args(name: str, cls: type, scorer_cls: Optional[type], args: Mapping[str, Any]) -> None:
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
