"""graphcf: graph collaborative filtering on PyTorch Geometric."""
__version__ = "0.1.0"

from graphcf.typing import INTERACTS, ITEM, REV_INTERACTS, USER, TopK, UserItemEmbeddings

__all__ = ["__version__", "USER", "ITEM", "INTERACTS", "REV_INTERACTS", "TopK", "UserItemEmbeddings"]
