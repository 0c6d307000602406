"""Samplers: negatives and training batches."""
from graphcf.samplers.negative import PopularityNegativeSampler, UniformNegativeSampler

__all__ = ["UniformNegativeSampler", "PopularityNegativeSampler"]
