"""Top-K recommendation for a batch of users, seen items excluded."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import num_users_items, split_edge_index, user_item_csr
from graphcf.evaluate import gather_rows, topk_items
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.typing import TopK


@torch.no_grad()
def recommend(
    encoder: Encoder,
    scorer: Scorer,
    data: HeteroData,
    users: Tensor,
    k: int = 10,
    exclude_splits: Sequence[str] = ("train",),
) -> TopK:
    """Top-``k`` item indices and scores for ``users`` (indices), never an item of ``exclude_splits``.

    Decode with :meth:`graphcf.data.IdMap.decode_items` to get raw item ids.
    """
    nu, ni = num_users_items(data)
    users = torch.as_tensor(users, dtype=torch.long)
    if len(users) and (int(users.min()) < 0 or int(users.max()) >= nu):
        raise ValueError(f"recommend: user indices must be in 0..{nu - 1}")
    was_training = encoder.training
    encoder.eval()
    emb = encoder(data)
    encoder.train(was_training)
    edges = torch.cat([split_edge_index(data, s) for s in exclude_splits], dim=1)
    csr = user_item_csr(edges, nu, ni)
    local, cols = gather_rows(csr.crow_indices(), csr.col_indices(), users)
    row_ptr = torch.zeros(len(users) + 1, dtype=torch.long)
    row_ptr[1:] = torch.cumsum(torch.bincount(local, minlength=len(users)), 0)
    return topk_items(emb.user[users], emb.item, scorer, min(k, ni), exclude=(row_ptr, cols))
