"""graphcf tutorial: hard-negative mining with personalised PageRank (PinSAGE, Ying et al., KDD 2018).

Run it with ``python docs/hard_negatives.py`` (under a minute on 2 CPU cores); the test suite
executes it (``tests/test_docs.py``).

A uniformly drawn negative is almost always an item the user plainly does not care about, so
after a few epochs it teaches the model nothing. PinSAGE ranks every item by personalised
PageRank (PPR) from the user and draws *hard* negatives from a band of ranks far enough down the
list not to be likely positives (2000th-5000th on Pinterest; graphcf scales the band down for
small catalogues), and adds them gradually (a curriculum: epoch n uses n-1 of them).
In graphcf these negatives work with every pairwise encoder, not only PinSAGE.

Steps:
 1. a small synthetic dataset with planted taste clusters;
 2. the PPR band of one user: how far its items are from the user's own items;
 3. BPR-MF with uniform negatives vs uniform + PPR hard negatives from two bands;
 4. PinSAGE (random-walk neighbourhoods, importance pooling, max-margin loss) with negatives
    shared by the mini-batch, then + the hard-negative curriculum.
"""
import logging
import os
import sys

import torch

from graphcf.data.synthetic import synthetic_dataset
from graphcf.nn.encoders import MFEncoder, PinSAGEEncoder
from graphcf.samplers.ppr import PPRHardNegativeSampler, default_ppr_band, item_ppr
from graphcf.seed import seed_everything
from graphcf.train import Trainer, TrainConfig
from graphcf.typing import INTERACTS

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
EPOCHS = int(os.environ.get("GRAPHCF_TUTORIAL_EPOCHS", "30"))

# 1. Data: 600 users x 400 items in 8 taste clusters; 80/10/10 random split per user.
data, _ = synthetic_dataset(num_users=600, num_items=400, num_clusters=8, mean_degree=20, seed=0)
nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
train_ei = data[INTERACTS].edge_index
print(f"data: {nu} users x {ni} items, {train_ei.size(1)} training interactions")

# 2. PPR from each user over the training graph; hard negatives come from a band of ranks among
#    the user's non-positive items. For 400 items the default band scales down from (2000, 5000).
band = default_ppr_band(ni)
sampler = PPRHardNegativeSampler(train_ei, nu, ni, band=band)
user = 0
scores = item_ppr(train_ei, nu, ni, torch.tensor([user]))[0]
own = train_ei[1, train_ei[0] == user]
hard = sampler.sample(torch.tensor([user]), 5, generator=torch.Generator().manual_seed(0))[0]
rank = torch.empty(ni, dtype=torch.long)
rank[torch.argsort(scores, descending=True)] = torch.arange(ni)
print(f"PPR band {band}: user {user} has {len(own)} training items at median PPR rank "
      f"{int(rank[own].median())}; its hard negatives {hard.tolist()} are at ranks {rank[hard].tolist()}")
assert not set(hard.tolist()) & set(own.tolist()), "a hard negative is never a training positive"

# 3. The same MF, uniform negatives vs + 2 PPR hard negatives per positive. The band matters: with
#    8 clusters of ~50 items, ranks 20-50 still lie inside the user's own cluster, so those "negatives"
#    are often items the user would like (held-out positives among them) and they hurt; ranks
#    100-200 are past the cluster: hard, but rarely true positives.
#    The negatives are settings of the objective (graphcf.objectives.BPRSettings), not of the trainer.
common = dict(epochs=EPOCHS, batch_size=512, lr=0.01, eval_every=5, patience=3, seed=0, ks=(20,))
results = {}
for name, extra in (("MF, uniform", {}), (f"MF, uniform + PPR {band}", {"hard_negatives": 2}),
                    ("MF, uniform + PPR (100, 200)", {"hard_negatives": 2, "ppr_band": (100, 200)})):
    seed_everything(0)
    obj_cfg = TrainConfig(**common, loss="bpr", objective={"reg": 1e-4, **extra})
    res = Trainer(obj_cfg).fit(MFEncoder(nu, ni, dim=32), data)
    results[name] = res.test
    print(f"{name:36s} test recall@20 {res.test['recall@20']:.4f}  ndcg@20 {res.test['ndcg@20']:.4f}"
          f"  (best epoch {res.best_epoch})")

# 4. PinSAGE: 64 shared negatives per mini-batch, max-margin loss on cosine scores; then the
#    curriculum adds one more PPR hard negative per positive each epoch, up to 3.
pinsage = dict(margin=0.1, reg=0.0, sampler="shared", num_negatives=64)  # graphcf.objectives.MarginSettings
for name, extra in (("PinSAGE, shared", {}),
                    ("PinSAGE, shared + PPR curriculum", {"hard_negatives": 3, "curriculum": True})):
    seed_everything(0)
    enc = PinSAGEEncoder(nu, ni, dim=32, num_layers=2, num_neighbors=10, num_walks=30)
    res = Trainer(TrainConfig(**common, loss="margin", objective={**pinsage, **extra})).fit(enc, data)
    results[name] = res.test
    print(f"{name:36s} test recall@20 {res.test['recall@20']:.4f}  ndcg@20 {res.test['ndcg@20']:.4f}"
          f"  (best epoch {res.best_epoch})")

# Which helps depends on the data: on real benchmarks see benchmarks/ablation_negatives.py.
best = max(results, key=lambda k: results[k]["recall@20"])
print(f"best here: {best}")
