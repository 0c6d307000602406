"""Training objectives, each registered with its own typed settings (:data:`OBJECTIVES`).

=============== ============================== ============================================
name            settings                       objective
=============== ============================== ============================================
``bpr``         :class:`BPRSettings`           :class:`PairwiseObjective` (or neighbour-sampled)
``margin``      :class:`MarginSettings`        :class:`PairwiseObjective` (PinSAGE's max-margin)
``softmax``     :class:`SoftmaxSettings`       :class:`PairwiseObjective` (sampled softmax)
``bce``         :class:`BCESettings`           :class:`PointwiseObjective` (NCF)
``multinomial`` :class:`MultinomialSettings`   :class:`MultinomialObjective` (Mult-VAE/DAE)
=============== ============================== ============================================

The pairwise objectives' negatives are :class:`NegativeSettings` (:data:`NEGATIVE_SAMPLERS`). A new
objective is one file with its settings, its :class:`Objective` and a :func:`register_objective`
call, plus its import below.
"""
from graphcf.objectives.base import (OBJECTIVES, Batch, Objective, ObjectiveSettings, ObjectiveSpec, make_objective,
                                     objective_names, objective_settings, register_objective, settings_owner,
                                     weighted_aux)
from graphcf.objectives.negatives import EASY_SAMPLERS, NEGATIVE_SAMPLERS, NegativeSettings
from graphcf.objectives.pairwise import (BPRSettings, MarginSettings, NeighborPairwiseObjective, PairBatch,
                                         PairwiseObjective, PairwiseSettings, SoftmaxSettings, pair_loss)
from graphcf.objectives.pointwise import BCESettings, PointwiseObjective
from graphcf.objectives.multinomial import MultinomialObjective, MultinomialSettings, anneal_beta

__all__ = [
    "OBJECTIVES", "Batch", "Objective", "ObjectiveSettings", "ObjectiveSpec", "make_objective", "objective_names",
    "objective_settings", "register_objective", "settings_owner", "weighted_aux", "EASY_SAMPLERS",
    "NEGATIVE_SAMPLERS", "NegativeSettings", "BPRSettings", "MarginSettings", "NeighborPairwiseObjective",
    "PairBatch", "PairwiseObjective", "PairwiseSettings", "SoftmaxSettings", "pair_loss", "BCESettings",
    "PointwiseObjective", "MultinomialObjective", "MultinomialSettings", "anneal_beta",
]
