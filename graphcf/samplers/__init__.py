"""Samplers: negatives and training batches."""
from graphcf.samplers.negative import UniformNegativeSampler

__all__ = ["UniformNegativeSampler"]
