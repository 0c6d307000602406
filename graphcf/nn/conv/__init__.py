"""Message-passing layers (PyG ``MessagePassing``) for the bipartite user-item graph."""
from graphcf.nn.conv.light_conv import LightConv

__all__ = ["LightConv"]
