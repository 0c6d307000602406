"""Neural building blocks: scorers (encoders live in ``graphcf.nn.encoders``)."""
from graphcf.nn.scorers import CosineScorer, DotScorer, Scorer

__all__ = ["Scorer", "DotScorer", "CosineScorer"]
