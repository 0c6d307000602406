"""The negatives that feed the pairwise objectives: the easy samplers' registry and their typed settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from graphcf.objectives.base import ObjectiveSettings

__all__ = ["NEGATIVE_SAMPLERS", "EASY_SAMPLERS", "NegativeSettings"]

#: the easy-negative samplers of the pairwise objectives (``objective.sampler``; ``graphcf train
#: --negatives`` adds ``ppr``, which sets ``hard_negatives`` instead): name -> what it draws
NEGATIVE_SAMPLERS: Dict[str, str] = {
    "uniform": "num_negatives uniform items per positive, never a training positive of the user",
    "popularity": "num_negatives items per positive drawn with weight count^popularity_alpha, never a positive",
    "shared": "num_negatives uniform items shared by the whole mini-batch (PinSAGE); pairs that hit a "
              "row's positive are masked",
}
EASY_SAMPLERS: Tuple[str, ...] = tuple(NEGATIVE_SAMPLERS)


@dataclass
class NegativeSettings(ObjectiveSettings):
    """Negatives of a pairwise objective.

    Args:
        num_negatives: easy negatives per positive (or per mini-batch with ``sampler="shared"``). (default: ``1``)
        sampler: one of :data:`NEGATIVE_SAMPLERS`. (default: ``"uniform"``)
        popularity_alpha: exponent of the popularity sampler. (default: ``0.75``)
        hard_negatives: personalised-PageRank hard negatives per positive, added to the easy ones
            (:class:`~graphcf.samplers.ppr.PPRHardNegativeSampler`); with ``curriculum`` the cap. (default: ``0``)
        curriculum: PinSAGE's schedule: epoch ``n`` uses ``min(hard_negatives, (n - 1) // curriculum_every)``.
        curriculum_every: epochs per added hard negative. (default: ``1``)
        ppr_band: ``(lo, hi)`` PPR ranks the hard negatives come from (``()``: scaled to the catalogue,
            ``(2000, 5000)`` for 40k items or more).
        ppr_alpha: restart probability of the personalised PageRank. (default: ``0.15``)
        ppr_iters: power iterations (10: top-100 overlap 0.99 with the converged ranking on Gowalla).
        ppr_cache: file to load the PPR cache from, or to write it to once computed (``""``: none).
    """

    num_negatives: int = 1
    sampler: str = "uniform"
    popularity_alpha: float = 0.75
    hard_negatives: int = 0
    curriculum: bool = False
    curriculum_every: int = 1
    ppr_band: Tuple[int, ...] = ()
    ppr_alpha: float = 0.15
    ppr_iters: int = 10
    ppr_cache: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        name = type(self).__name__
        if self.num_negatives < 1:
            raise ValueError(f"{name}.num_negatives must be >= 1, got {self.num_negatives}")
        if self.sampler not in NEGATIVE_SAMPLERS:
            raise ValueError(f"{name}.sampler must be one of {list(NEGATIVE_SAMPLERS)}, got {self.sampler!r}")
        self.ppr_band = tuple(int(b) for b in self.ppr_band)
        if self.ppr_band and (len(self.ppr_band) != 2 or not 0 <= self.ppr_band[0] < self.ppr_band[1]):
            raise ValueError(f"{name}.ppr_band must be () or (lo, hi) with 0 <= lo < hi, got {self.ppr_band}")
        if self.hard_negatives < 0 or self.curriculum_every < 1:
            raise ValueError(f"{name}.hard_negatives must be >= 0 and curriculum_every >= 1, got "
                             f"{self.hard_negatives}, {self.curriculum_every}")
        if self.curriculum and self.hard_negatives < 1:
            raise ValueError(f"{name}.curriculum needs hard_negatives >= 1 (the cap of the schedule)")
        if not 0.0 < self.ppr_alpha < 1.0 or self.ppr_iters < 1:
            raise ValueError(f"{name}.ppr_alpha must be in (0, 1) and ppr_iters >= 1, got "
                             f"{self.ppr_alpha}, {self.ppr_iters}")
