"""Side by side: graphcf's LightGCN and RecBole's LightGCN on the same Gowalla split and recipe.

Usage (RecBole lives in its own virtual environment; install it once)::

    python -m venv /tmp/rbvenv && /tmp/rbvenv/bin/pip install torch==2.13.0 recbole
    /tmp/rbvenv/bin/pip install "numpy<2" "scipy<1.12" "pandas<2.2"   # RecBole 1.2.1 needs the old APIs
    python benchmarks/bench_recbole.py --recbole-python /tmp/rbvenv/bin/python --epochs 2 --threads 2

Both sides run the official LightGCN recipe (He et al. 2020): 64 dims, 3 layers, BPR with one
uniform negative per training interaction, batch 2048, Adam lr 1e-3, L2 1e-4 on the batch's
layer-0 embeddings (RecBole: ``reg_weight=1e-4, require_pow=True``, the squared norm of the
official code), for the same number of epochs on ``train.txt``, no validation, then full-ranking
Recall@20 / NDCG@20 on ``test.txt`` with training items masked. RecBole reads the split as atomic
benchmark files written to a temporary directory (its ``valid`` file is a copy of the test file,
never read: ``eval_step=0`` disables validation). Each side runs in its own process, one after the
other, with the same torch thread count; "s/epoch" is the training time over the epochs (RecBole:
its ``Trainer.fit``; graphcf: the sum of the trainer's per-epoch ``train_s``); "eval s" is the
test evaluation; "peak RSS" is the process's. Prints one Markdown table to stdout.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_recbole")

RECIPE = dict(dim=64, layers=3, batch_size=2048, lr=1e-3, reg=1e-4)


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _read_lightgcn_file(path: Path):
    """(user, item) pairs of a LightGCN-format file: ``user item item ...`` per line."""
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            ids = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{path}, line {n}: expected integer ids, got {line.strip()[:60]!r}") from None
        for i in ids[1:]:
            yield ids[0], i


def run_recbole(data_dir: Path, epochs: int, threads: int, seed: int) -> Dict[str, Any]:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # RecBole writes log/ and log_tensorboard/ into the working directory
        ds_dir = Path(tmp) / "gowalla"
        ds_dir.mkdir()
        for src, name in (("train.txt", "train"), ("test.txt", "valid"), ("test.txt", "test")):
            with open(ds_dir / f"gowalla.{name}.inter", "w", encoding="utf-8") as f:
                f.write("user_id:token\titem_id:token\n")
                for u, i in _read_lightgcn_file(data_dir / src):
                    f.write(f"{u}\t{i}\n")
        cfg = Config(model="LightGCN", dataset="gowalla", config_dict={
            "data_path": tmp, "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]}, "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
            "embedding_size": RECIPE["dim"], "n_layers": RECIPE["layers"], "reg_weight": RECIPE["reg"],
            "require_pow": True, "learning_rate": RECIPE["lr"], "train_batch_size": RECIPE["batch_size"],
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            "epochs": epochs, "eval_step": 0, "stopping_step": 10**9, "metrics": ["Recall", "NDCG"], "topk": [20],
            "valid_metric": "Recall@20", "eval_args": {"order": "RO", "group_by": "user", "mode": "full"},
            "eval_batch_size": 4096, "seed": seed, "reproducibility": True, "show_progress": False,
            "device": "cpu", "use_gpu": False, "checkpoint_dir": str(Path(tmp) / "saved"), "worker": 0,
            "log_wandb": False, "state": "WARNING",
        })
        init_seed(cfg["seed"], cfg["reproducibility"])
        torch.set_num_threads(threads)  # init_seed may reset it
        dataset = create_dataset(cfg)
        train_data, _, test_data = data_preparation(cfg, dataset)
        model = LightGCN(cfg, train_data.dataset).to(cfg["device"])
        trainer = Trainer(cfg, model)
        t0 = time.perf_counter()
        trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        eval_s = time.perf_counter() - t0
        return {"side": "RecBole " + __import__("recbole").__version__, "train_s": train_s, "eval_s": eval_s,
                "recall@20": float(res["recall@20"]), "ndcg@20": float(res["ndcg@20"]),
                "peak_rss_gib": _peak_rss_gib(), "users": int(dataset.user_num) - 1,
                "items": int(dataset.item_num) - 1, "train_edges": int(len(train_data.dataset))}


def run_graphcf(data_dir: Path, epochs: int, threads: int, seed: int) -> Dict[str, Any]:
    import torch

    sys.path.insert(0, str(REPO))
    from graphcf.data.loaders import load_lightgcn_dir
    from graphcf.models import build_model
    from graphcf.train import Trainer, TrainConfig
    from graphcf.typing import INTERACTS

    torch.set_num_threads(threads)
    torch.manual_seed(seed)  # the embedding initialisation
    data, _ = load_lightgcn_dir(data_dir)
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    enc, scorer = build_model("lightgcn", nu, ni, {"dim": RECIPE["dim"], "num_layers": RECIPE["layers"]})
    cfg = TrainConfig(epochs=epochs, batch_size=RECIPE["batch_size"], lr=RECIPE["lr"], eval_every=0, patience=0,
                      seed=seed, loss="bpr", objective={"reg": RECIPE["reg"], "num_negatives": 1})
    res = Trainer(cfg).fit(enc, data, scorer)
    train_s = sum(r["train_s"] for r in res.history)
    t0 = time.perf_counter()
    test = Trainer(cfg).evaluate(enc, data, "test", scorer=scorer)
    eval_s = time.perf_counter() - t0
    return {"side": "graphcf", "train_s": train_s, "eval_s": eval_s, "recall@20": test["recall@20"],
            "ndcg@20": test["ndcg@20"], "peak_rss_gib": _peak_rss_gib(), "users": nu, "items": ni,
            "train_edges": int(data[INTERACTS].edge_index.size(1))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "gowalla")
    p.add_argument("--recbole-python", default=None, help="python of the environment with recbole installed")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--side", choices=["graphcf", "recbole"], help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    args.data_dir = args.data_dir.resolve()
    if args.side:  # a child process: one side, JSON on stdout
        fn = run_recbole if args.side == "recbole" else run_graphcf
        print(json.dumps(fn(args.data_dir, args.epochs, args.threads, args.seed)))
        return
    if not args.recbole_python:
        p.error("--recbole-python is required (a python with recbole installed, see the module docstring)")
    results = []
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for side, python in (("recbole", args.recbole_python), ("graphcf", sys.executable)):
        cmd = [python, __file__, "--side", side, "--data-dir", str(args.data_dir), "--epochs", str(args.epochs),
               "--threads", str(args.threads), "--seed", str(args.seed)]
        log.info("running %s", " ".join(cmd))
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    rb, gc = results
    print(f"Gowalla ({args.data_dir}): {gc['users']} users x {gc['items']} items, {gc['train_edges']} training edges "
          f"(RecBole: {rb['users']} x {rb['items']}, {rb['train_edges']}); LightGCN 64 dims, 3 layers, batch 2048, "
          f"Adam 1e-3, L2 1e-4, {args.epochs} epochs, {args.threads} threads")
    print()
    print("| side | s/epoch | eval s | test recall@20 | test ndcg@20 | peak RSS GiB | s/epoch ratio (RecBole / side) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        spe = r["train_s"] / args.epochs
        print(f"| {r['side']} | {spe:.1f} | {r['eval_s']:.1f} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | "
              f"{r['peak_rss_gib']:.2f} | {rb['train_s'] / r['train_s']:.2f} |")


if __name__ == "__main__":
    main()
