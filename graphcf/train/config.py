"""The training settings: :class:`TrainConfig` (generic: epochs, optimiser, schedules, evaluation,
device) and the objective it trains (``loss``, with that objective's own typed settings)."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from graphcf.objectives import OBJECTIVES, Objective, make_objective, objective_settings, settings_owner

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "TRAINING_ONLY_FIELDS"]

#: TrainConfig fields that only gradient training uses (a training-free model ignores them)
TRAINING_ONLY_FIELDS = ("epochs", "batch_size", "lr", "patience", "loss", "objective", "optimizer", "momentum",
                        "precision", "lr_milestones", "lr_plateau", "lr_gamma", "sampling", "num_neighbors",
                        "time_budget_s")


@dataclass
class TrainConfig:
    """Settings of :class:`~graphcf.train.Trainer`; keys map one to one onto the YAML ``train:`` section,
    and ``objective`` onto the YAML ``objective:`` section (its ``name`` is ``loss``).

    Args:
        epochs: maximum number of epochs (one pass over the training pairs each).
        batch_size: training rows per mini-batch.
        lr: learning rate.
        eval_every: validate every this many epochs (0: never; test only at the end).
        patience: stop after this many validations without improvement (0: never stop early).
        metric: the validation metric to maximise, e.g. ``"recall@20"``.
        ks: cut-offs evaluated in one pass (the metric's own is added).
        seed: seed of the training generator (batch order, negatives).
        loss: the objective, a name of :data:`graphcf.objectives.OBJECTIVES` (``bpr``, ``margin``,
            ``softmax``, ``bce``, ``multinomial``).
        objective: that objective's settings: an instance of its settings class, a mapping of them
            (checked there; unknown keys list the valid ones) or ``None`` for its defaults.
        optimizer: ``"adam"`` (fused) or ``"sgd"`` (NeuMF fine-tuning after pretraining, as in the paper).
        momentum: SGD momentum.
        precision: ``"fp32"`` or ``"bf16"`` (``torch.autocast`` of the training forward pass; evaluation
            always runs in float32).
        lr_milestones: epochs after which the learning rate is multiplied by ``lr_gamma`` (epoch ``e``
            trains with ``lr * lr_gamma ** #{m in lr_milestones : m < e}``).
        lr_plateau: multiply the learning rate by ``lr_gamma`` after this many validations in a row
            without improvement (0: off). The epochs after which it happened are logged (``"lr"`` in
            ``metrics.jsonl``), so a retrain without a validation split can replay them as milestones.
        lr_gamma: the decay factor of both schedules, in ``(0, 1]``.
        sampling: ``"full"`` (the encoder propagates over the whole training graph for every batch) or
            ``"neighbor"`` (each BPR batch is a ``LinkNeighborLoader`` subgraph; encoders that declare
            ``supports_sampled_subgraphs`` only).
        num_neighbors: neighbours sampled per node at each hop in ``"neighbor"`` mode (``-1``: all).
        time_budget_s: stop after the first epoch at which the run's cumulative training seconds
            reach this budget (0: none).
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``;
            model, graph, adjacency caches, batches and evaluation live there (an unavailable device is
            an error). Batches are sampled on the CPU with the seeded generator and moved.
    """

    epochs: int = 50
    batch_size: int = 2048
    lr: float = 1e-3
    eval_every: int = 1
    patience: int = 10
    metric: str = "recall@20"
    ks: Tuple[int, ...] = (20,)
    seed: int = 0
    loss: str = "bpr"
    objective: Any = None
    optimizer: str = "adam"
    momentum: float = 0.0
    precision: str = "fp32"
    lr_milestones: Tuple[int, ...] = ()
    lr_plateau: int = 0
    lr_gamma: float = 0.1
    sampling: str = "full"
    num_neighbors: Tuple[int, ...] = (10, 10, 10)
    time_budget_s: float = 0.0
    device: str = "auto"

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"TrainConfig: epochs must be >= 0 and batch_size >= 1, got {self.epochs}, "
                             f"{self.batch_size}")
        if self.loss not in OBJECTIVES:
            raise ValueError(f"TrainConfig.loss must be one of {sorted(OBJECTIVES)}, got {self.loss!r}")
        self.objective = objective_settings(self.loss, self.objective, where="objective")
        if self.sampling not in ("full", "neighbor"):
            raise ValueError(f"TrainConfig.sampling must be 'full' or 'neighbor', got {self.sampling!r}")
        if self.sampling == "neighbor" and self.loss != "bpr":
            raise ValueError(f"TrainConfig.sampling='neighbor' trains BPR only (got loss={self.loss!r})")
        self.objective.check_training(self.sampling)
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"TrainConfig.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"TrainConfig.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        self.lr_milestones = tuple(sorted(int(m) for m in self.lr_milestones))
        if any(m < 1 for m in self.lr_milestones):
            raise ValueError(f"TrainConfig.lr_milestones must be epochs >= 1, got {self.lr_milestones}")
        if self.lr_plateau < 0:
            raise ValueError(f"TrainConfig.lr_plateau must be >= 0, got {self.lr_plateau}")
        if not 0.0 < self.lr_gamma <= 1.0:
            raise ValueError(f"TrainConfig.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        self.num_neighbors = tuple(int(k) for k in self.num_neighbors)
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.time_budget_s < 0:
            raise ValueError(f"TrainConfig.time_budget_s must be >= 0 (0: no budget), got {self.time_budget_s}")
        self.device = str(self.device)
        if "@" in self.metric:
            k = int(self.metric.split("@")[1])
            if k not in self.ks:
                self.ks = tuple(sorted(set(self.ks) | {k}))

    # -- construction from config sections -------------------------------------
    @classmethod
    def from_flat(cls, mapping: Optional[Mapping[str, Any]] = None, where: str = "train",
                  objective: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> "TrainConfig":
        """A config from a ``train`` section (``mapping`` and/or keyword arguments) and an ``objective``
        section.

        The ``train`` section may still carry an objective's settings flat (the layout before objectives
        owned their settings: ``train: {loss: bpr, reg: 1e-4, num_negatives: 8}``): such a key is moved
        into the objective's settings, with a warning that gives the new spelling
        (``objective: {reg: 1e-4}``). A key that is neither a ``TrainConfig`` field nor a setting of the
        chosen objective is an error that lists both sets of valid keys, and names the objectives that
        do have it.
        """
        from graphcf.config import check_kwargs, coerce_kwargs

        flat = {**dict(mapping or {}), **kwargs}
        obj = dict(objective or {})
        name = obj.pop("name", None)
        if name is not None and "loss" in flat and flat["loss"] != name:
            raise ValueError(f"{where}: loss={flat['loss']!r} but objective.name={name!r}; give one of them")
        loss = str(flat.get("loss", name or "bpr"))
        flat["loss"] = loss
        if isinstance(flat.get("objective"), Mapping):
            obj = {**dict(flat.pop("objective")), **obj}
            obj.pop("name", None)
        moved = cls.legacy_objective_keys(flat, loss, where)
        for key, value in moved.items():
            if key in obj:
                raise ValueError(f"{where}: {key!r} is given both in the train section and in objective")
            obj[key] = value
        check_kwargs(cls, flat, where)
        flat = coerce_kwargs(cls, flat, where)
        if obj:
            flat["objective"] = obj
        try:
            return cls(**flat)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None

    @classmethod
    def legacy_objective_keys(cls, train: Dict[str, Any], loss: str, where: str = "train") -> Dict[str, Any]:
        """Remove from ``train`` (in place) and return the keys that are settings of objective ``loss``
        rather than :class:`TrainConfig` fields (the flat layout of older configs), warning with the new
        spelling. A key that is neither is an error listing both sets of valid keys and naming the
        objectives that do have it."""
        if loss not in OBJECTIVES:
            raise ValueError(f"{where}: loss must be one of {sorted(OBJECTIVES)}, got {loss!r}")
        own = {f.name for f in dataclasses.fields(cls)}
        obj_fields = set(OBJECTIVES[loss].settings_fields())
        moved: Dict[str, Any] = {}
        for key in [k for k in train if k not in own]:
            if key in obj_fields:
                moved[key] = train.pop(key)
                continue
            owners = settings_owner(key)
            hint = f"; {key!r} is a setting of objective(s) {owners}, not of {loss!r}" if owners else ""
            raise ValueError(f"{where}: unknown key {key!r} for TrainConfig{hint}; valid train keys: "
                             f"{sorted(own - {'objective'})}; settings of objective {loss!r} (section "
                             f"'objective'): {sorted(obj_fields)}")
        if moved:
            logger.warning("%s: %s %s objective settings; the new spelling is an 'objective' section: "
                           "objective: {name: %s, %s}", where, ", ".join(moved),
                           "is an" if len(moved) == 1 else "are", loss,
                           ", ".join(f"{k}: {v!r}" for k, v in moved.items()))
        return moved

    def sections(self) -> Tuple[dict, dict]:
        """``(train, objective)`` as plain YAML-ready mappings (``objective`` carries ``name``)."""
        train = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("objective",)}
        train = {k: list(v) if isinstance(v, tuple) else v for k, v in train.items()}
        obj = {"name": self.loss, **{k: (list(v) if isinstance(v, tuple) else v)
                                     for k, v in dataclasses.asdict(self.objective).items()}}
        return train, obj

    # -- what the trainer builds from it --------------------------------------------
    def make_objective(self) -> Objective:
        """The :mod:`graphcf.objectives` object this config describes."""
        return make_objective(self.loss, self.objective, self.sampling, self.num_neighbors)

    def lr_at(self, epoch: int, plateau_scale: float = 1.0) -> float:
        """The learning rate of epoch ``epoch`` (1-based) under the step schedule, times ``plateau_scale``."""
        return self.lr * plateau_scale * self.lr_gamma ** sum(m < epoch for m in self.lr_milestones)

    def make_optimizer(self, params: List[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        return torch.optim.Adam(params, lr=self.lr, fused=True)  # fused: ~3x faster steps on CPU

    def ignored_by_training_free(self) -> List[str]:
        """The training-only fields set away from their defaults (a training-free model ignores them)."""
        default = TrainConfig(loss=self.loss)
        out = [f for f in TRAINING_ONLY_FIELDS if f not in ("loss", "objective")
               and getattr(self, f) != getattr(default, f)]
        if self.loss != "bpr":
            out.append("loss")
        if self.objective != default.objective:
            out.append("objective")
        return out
