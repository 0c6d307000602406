"""Encoders: graph (K-hop) and zero-hop models, all returning UserItemEmbeddings."""
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.encoders.mf import MFEncoder
from graphcf.nn.encoders.popularity import PopularityEncoder

__all__ = ["Encoder", "MFEncoder", "PopularityEncoder"]
