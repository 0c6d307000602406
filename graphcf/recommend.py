"""Top-K recommendation for a batch of users, seen items excluded."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.model import Recommender, as_model
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.typing import TopK


@torch.no_grad()
def recommend(
    model: Union[Recommender, Encoder],
    scorer: Optional[Scorer],
    data: HeteroData,
    users: Tensor,
    k: int = 10,
    exclude_splits: Sequence[str] = ("train",),
) -> TopK:
    """Top-``k`` item indices and scores for ``users`` (indices), never an item of ``exclude_splits``.

    ``model`` is any :class:`~graphcf.model.Recommender` (pass ``scorer=None``) or an encoder with its
    scorer. Only ``users`` are scored (:meth:`Recommender.topk`: in chunks, never a dense users x items
    matrix). Decode with :meth:`graphcf.data.IdMap.decode_items` to get raw item ids.
    """
    return as_model(model, scorer).topk(data, users, k=k, exclude_splits=exclude_splits)
