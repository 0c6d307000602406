"""Samplers: negatives and training batches."""
from graphcf.samplers.negative import PopularityNegativeSampler, UniformNegativeSampler
from graphcf.samplers.random_walk import ImportanceNeighborhoods, importance_neighborhoods

__all__ = ["UniformNegativeSampler", "PopularityNegativeSampler", "ImportanceNeighborhoods",
           "importance_neighborhoods"]
