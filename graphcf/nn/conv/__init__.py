"""Message-passing layers (PyG ``MessagePassing``) for the bipartite user-item graph."""
from graphcf.nn.conv.light_conv import LightConv
from graphcf.nn.conv.ngcf_conv import NGCFConv
from graphcf.nn.conv.pinsage_conv import PinSAGEConv

__all__ = ["LightConv", "NGCFConv", "PinSAGEConv"]
