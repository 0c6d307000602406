"""Encoders: graph (K-hop) and zero-hop models, all returning UserItemEmbeddings."""
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.encoders.lightgcn import LightGCNEncoder
from graphcf.nn.encoders.mf import MFEncoder
from graphcf.nn.encoders.ngcf import NGCFEncoder
from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder
from graphcf.nn.encoders.pinsage import PinSAGEEncoder
from graphcf.nn.encoders.popularity import PopularityEncoder
from graphcf.nn.encoders.vae import MultDAEEncoder, MultVAEEncoder

__all__ = ["Encoder", "MFEncoder", "PopularityEncoder", "GMFEncoder", "MLPEncoder", "NeuMFEncoder",
           "MultVAEEncoder", "MultDAEEncoder", "LightGCNEncoder", "NGCFEncoder",
           "PinSAGEEncoder"]
