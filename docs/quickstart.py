"""graphcf quickstart: a raw interaction file -> HeteroData -> trained model -> top-K in raw ids.

Run it with ``python docs/quickstart.py`` (about a minute on 2 CPU cores). The test
suite executes this file (``tests/test_docs.py``) so it never goes stale.

Every step below is one small, typed part of the graphcf pipeline:

    data -> sampler -> encoder -> scorer -> loss -> trainer -> evaluator -> top-K
"""
import logging
import os
import sys
import tempfile
from pathlib import Path

import torch

from graphcf.data import IdMap, encode, to_heterodata
from graphcf.data.preprocess import drop_duplicates, kcore
from graphcf.data.readers import read_delimited
from graphcf.data.split import leave_one_out
from graphcf.data.synthetic import write_synthetic_csv
from graphcf.models import make_model
from graphcf.train import Trainer, TrainConfig

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
EPOCHS = int(os.environ.get("GRAPHCF_QUICKSTART_EPOCHS", "20"))
workdir = Path(tempfile.mkdtemp(prefix="graphcf-quickstart-"))

# 1. A raw interaction file. Yours would be an export such as "user_id,item_id,timestamp";
#    here graphcf writes one with planted taste clusters (string ids like "u17", "i42").
csv_path = write_synthetic_csv(workdir / "interactions.csv", seed=0, num_users=1000, num_items=500)
print("raw file:", csv_path, "first line:", csv_path.read_text().splitlines()[1])

# 2. Read it (raw ids stay as they are), clean it, map ids to contiguous indices.
raw = read_delimited(csv_path, user_col="user_id", item_col="item_id", time_col="timestamp")
raw = kcore(drop_duplicates(raw), user_k=3, item_k=3)
encoded, idmap = encode({"all": raw})
idmap.save(workdir / "idmap.json")  # keep the mapping to answer in raw ids later

# 3. Split: the latest interaction of each user is test, the second latest validation.
#    Only training edges enter the graph's edge_index (message passing); held-out
#    edges are stored as val_edge_label_index / test_edge_label_index.
splits = leave_one_out(encoded["all"], with_val=True, seed=0)
data = to_heterodata(splits)
print(data)

# 4. Every model is one object from the registry (graphcf.models.MODELS), trained or not. Baseline:
#    item popularity, fitted by counting, through the same trainer and evaluator.
pop = make_model("popularity", idmap.num_users, idmap.num_items)
pop_metrics = Trainer(TrainConfig(ks=(10, 20))).fit(pop, data).test
print(f"popularity  test recall@20={pop_metrics['recall@20']:.4f}  ndcg@20={pop_metrics['ndcg@20']:.4f}")

# 5. Train BPR-MF: uniform negatives (never a training positive), BPR loss, Adam,
#    validation every epoch, best checkpoint restored, test evaluated once.
torch.manual_seed(0)
model = make_model("mf", idmap.num_users, idmap.num_items, {"dim": 32})
config = TrainConfig(epochs=EPOCHS, batch_size=1024, lr=0.01, ks=(10, 20), seed=0,
                     loss="bpr", objective={"reg": 1e-4},   # the objective owns its settings
                     device="auto")                           # CUDA when there is one
result = Trainer(config).fit(model, data, out_dir=workdir / "run")
print(f"BPR-MF      test recall@20={result.test['recall@20']:.4f}  ndcg@20={result.test['ndcg@20']:.4f}"
      f"  (best epoch {result.best_epoch})")

# 6. A training-free model: EASE (Steck 2019), one closed-form fit, no epochs.
ease = make_model("ease", idmap.num_users, idmap.num_items, {"l2": 50.0})
ease_metrics = Trainer(TrainConfig(ks=(10, 20))).fit(ease, data).test
print(f"EASE        test recall@20={ease_metrics['recall@20']:.4f}  ndcg@20={ease_metrics['ndcg@20']:.4f}")

# 7. Top-K for a few raw user ids, training items excluded, answered in raw item ids.
idmap = IdMap.load(workdir / "idmap.json")
raw_users = idmap.decode_users(torch.arange(3))
top = model.topk(data, torch.from_numpy(idmap.encode_users(raw_users)), k=5)
for u, items in zip(raw_users, idmap.decode_items(top.indices.cpu())):
    print(f"user {u}: top-5 {items.tolist()}")
