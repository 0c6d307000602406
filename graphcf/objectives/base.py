"""The objective contract and its registry.

An objective owns the batch construction (which uses a sampler) and the loss (a pure function
from :mod:`graphcf.losses`). The :class:`~graphcf.train.Trainer` only runs the loop, so one trainer
serves pairwise (BPR), pointwise (NCF's log loss with sampled negatives) and user-row (Mult-VAE's
multinomial likelihood) models alike.

Each objective is registered once (:func:`register_objective`) with its own typed settings, a
dataclass derived from :class:`ObjectiveSettings` that checks its values where it is defined; the
config's ``objective`` section, :class:`~graphcf.train.TrainConfig` and the CLI's ``--loss`` choices
all come from :data:`OBJECTIVES`. Adding a loss is one file: its settings, its
:class:`Objective` subclass and a :func:`register_objective` call (imported by
``graphcf/objectives/__init__.py``).

Every objective has a small ``state_dict`` (e.g. the KL-annealing step counter), saved in the
trainer's checkpoint so a resumed run continues the same schedule.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Tuple, Type

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.typing import UserItemEmbeddings

Batch = Tuple[Tensor, ...]

__all__ = ["Batch", "Objective", "ObjectiveSettings", "ObjectiveSpec", "OBJECTIVES", "register_objective",
           "objective_settings", "make_objective", "objective_names", "weighted_aux", "settings_owner"]


@dataclass
class ObjectiveSettings:
    """Settings every objective has.

    Args:
        aux_weights: weight of each of the encoder's named auxiliary losses
            (``UserItemEmbeddings.aux``, e.g. ``{"kl": 0.5}``); a name not given has weight 1.
            The multinomial objective multiplies the weight of ``kl`` by its annealed beta.
    """

    aux_weights: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.aux_weights = {str(k): float(v) for k, v in dict(self.aux_weights or {}).items()}
        bad = {k: v for k, v in self.aux_weights.items() if not v >= 0}
        if bad:
            raise ValueError(f"aux_weights must be >= 0, got {bad}")

    def check_training(self, sampling: str) -> None:
        """Raise ``ValueError`` if this objective cannot train in ``sampling`` mode (``"full"`` /
        ``"neighbor"``). Default: full-graph only."""
        if sampling != "full":
            raise ValueError(f"{type(self).__name__}: sampling={sampling!r} is not supported by this objective "
                             "(only 'bpr' with uniform negatives trains on neighbour-sampled subgraphs)")


def weighted_aux(emb: UserItemEmbeddings, weights: Mapping[str, float]) -> Optional[Tensor]:
    """``sum_name weights.get(name, 1) * emb.aux[name]`` (``None`` when the encoder returned none)."""
    if not emb.aux:
        return None
    total: Optional[Tensor] = None
    for name, value in emb.aux.items():
        w = float(weights.get(name, 1.0))
        term = value if w == 1.0 else w * value
        total = term if total is None else total + term
    return total


class Objective:
    """Base class; subclasses implement :meth:`batches` and :meth:`loss`.

    Attributes:
        aux_weights: weights of the encoder's named auxiliary losses (see :class:`ObjectiveSettings`).
    """

    aux_weights: Mapping[str, float] = {}

    def setup(self, data: HeteroData) -> None:
        """Build samplers / caches for this training graph (called once per fit; the graph is on the CPU)."""

    def batches(self, data: HeteroData, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        raise NotImplementedError

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch's batches (1-based; schedules such as a curriculum)."""

    def num_rows(self, batch: Batch) -> int:
        return int(batch[0].numel())

    def check_encoder(self, encoder: Encoder) -> None:
        """Raise before training if ``encoder`` cannot be trained by this objective (default: any can)."""

    def loss(self, encoder: Encoder, scorer: Scorer, data: HeteroData, batch: Batch) -> Tensor:
        raise NotImplementedError

    def add_aux(self, loss: Tensor, emb: UserItemEmbeddings, weights: Optional[Mapping[str, float]] = None) -> Tensor:
        """``loss`` plus the encoder's auxiliary losses, each weighted by ``weights`` (default :attr:`aux_weights`)."""
        aux = weighted_aux(emb, self.aux_weights if weights is None else weights)
        return loss if aux is None else loss + aux

    def state_dict(self) -> Dict[str, Any]:
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        pass


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective: its name, settings class, factory and one-line summary.

    ``build(settings, sampling, num_neighbors) -> Objective``.
    """

    name: str
    settings: Type[ObjectiveSettings]
    build: Callable[[Any, str, Tuple[int, ...]], Objective]
    summary: str = ""

    def settings_fields(self) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self.settings))


#: name -> :class:`ObjectiveSpec`; filled by :func:`register_objective` (CLI ``--loss`` choices).
OBJECTIVES: Dict[str, ObjectiveSpec] = {}


def register_objective(name: str, settings: Type[ObjectiveSettings],
                       build: Callable[[Any, str, Tuple[int, ...]], Objective], summary: str = "") -> ObjectiveSpec:
    """Register objective ``name`` (``train.loss``) with its settings dataclass and factory."""
    if not (dataclasses.is_dataclass(settings) and issubclass(settings, ObjectiveSettings)):
        raise TypeError(f"register_objective({name!r}): settings must be an ObjectiveSettings dataclass")
    if name in OBJECTIVES and OBJECTIVES[name].settings is not settings:
        raise ValueError(f"objective {name!r} is already registered")
    spec = ObjectiveSpec(name, settings, build, summary)
    OBJECTIVES[name] = spec
    return spec


def objective_names() -> Tuple[str, ...]:
    return tuple(OBJECTIVES)


def _spec(name: str) -> ObjectiveSpec:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective (train.loss) {name!r}; valid: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def objective_settings(name: str, settings: Any = None, where: str = "objective") -> ObjectiveSettings:
    """The typed settings of objective ``name`` from ``settings``: ``None`` (the defaults), a mapping
    (unknown keys are an error listing the valid ones; YAML strings such as ``5e-3`` are coerced) or
    an instance of the objective's settings class."""
    from graphcf.config import dataclass_from

    spec = _spec(name)
    if settings is None:
        return spec.settings()
    if isinstance(settings, ObjectiveSettings):
        if type(settings) is not spec.settings:
            raise ValueError(f"{where}: objective {name!r} takes {spec.settings.__name__}, "
                             f"got {type(settings).__name__}")
        return settings
    if not isinstance(settings, Mapping):
        raise ValueError(f"{where}: expected a mapping of {name!r} settings, got {type(settings).__name__}")
    mapping = dict(settings)
    mapping.pop("name", None)
    return dataclass_from(spec.settings, mapping, f"{where} ({name})")


def settings_owner(key: str) -> Sequence[str]:
    """The registered objectives whose settings have a field ``key``."""
    return [n for n, s in OBJECTIVES.items() if key in s.settings_fields()]


def make_objective(name: str, settings: Any = None, sampling: str = "full",
                   num_neighbors: Tuple[int, ...] = (10, 10, 10)) -> Objective:
    """Build objective ``name`` with ``settings`` (see :func:`objective_settings`) for ``sampling``."""
    spec = _spec(name)
    s = objective_settings(name, settings)
    s.check_training(sampling)
    obj = spec.build(s, sampling, tuple(num_neighbors))
    obj.aux_weights = dict(s.aux_weights)
    return obj
