"""Reproduce a paper number: tune on a validation split, retrain on the full train file, report test.

Protocol (the LightGCN / NGCF papers trained on the whole train file):
  1. if the data has no validation split, carve one out of train (per-user ratio, fixed seed);
     train with early stopping on validation `--metric`; the best epoch is the chosen epoch count;
  2. retrain from scratch on the whole train file for that many epochs and evaluate the test split.
For data with its own validation split (amazon-beauty, citeulike), step 1 uses it and the test
numbers come from the best-validation checkpoint of that same run (no retraining).

Prints one Markdown table to stdout; logs go to stderr.

Example:
  python benchmarks/reproduce.py --model mf --data ../shared/data/gowalla --format lightgcn \
      --set train.lr=0.001 --set train.epochs=400 --paper-recall 0.160
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any, Dict

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphcf.data.build import has_split  # noqa: E402
from graphcf.data.loaders import load_lightgcn_dir, load_triples_dir  # noqa: E402
from graphcf.data.source import with_validation  # noqa: E402
from graphcf.models import build_model, resolve_sections  # noqa: E402
from graphcf.seed import seed_everything  # noqa: E402
from graphcf.train import Trainer, TrainConfig, lr_decay_epochs  # noqa: E402

log = logging.getLogger("reproduce")


def _set(cfg: Dict[str, Any], assignment: str) -> None:
    key, _, value = assignment.partition("=")
    section, _, name = key.partition(".")
    cfg.setdefault(section, {})[name] = yaml.safe_load(value)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--format", choices=["lightgcn", "triples"], required=True)
    p.add_argument("--config", help="YAML with model_args / train sections")
    p.add_argument("--set", action="append", default=[], help="override, e.g. train.lr=0.001")
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/reproduce")
    p.add_argument("--skip-retrain", action="store_true")
    p.add_argument("--full-only", action="store_true",
                   help="only the full-train run, logging test metrics every eval_every epochs (pair it with "
                        "a --skip-retrain tuning run of the same config: the test figure at the chosen epoch "
                        "equals a retrain for that many epochs, as training is seeded and has no schedule)")
    p.add_argument("--init-from", help="checkpoint.pt of an earlier run of this script to continue with the "
                                        "given config (e.g. an lr schedule added after a plateau); see "
                                        "Trainer.fit(init_from=...)")
    p.add_argument("--milestones-from", help="metrics.jsonl of a tuning run: replay its learning-rate decays as "
                                             "train.lr_milestones (for --full-only; the retrain step does this "
                                             "itself)")
    p.add_argument("--keep-every", type=int, default=0,
                   help="also keep the checkpoint of every N-th epoch (full_log/checkpoints/epoch_NNNN.pt with "
                        "--full-only), to continue from with --init-from later")
    p.add_argument("--embeddings-from",
                   help="checkpoint.pt (or a state_dict .pt) of an earlier run whose user/item embedding tables "
                        "initialise this model's (e.g. NGCF from MF, the NGCF authors' --pretrain -1); "
                        "see Encoder.load_embeddings")
    p.add_argument("--paper-recall", type=float)
    p.add_argument("--paper-ndcg", type=float)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    cfg: Dict[str, Any] = yaml.safe_load(open(args.config)) if args.config else {}
    for a in args.set:
        _set(cfg, a)
    model_args = cfg.get("model_args", {})
    train_args, objective = resolve_sections(args.model, cfg.get("train"), cfg.get("objective"),
                                             where=args.config or "config")
    load = load_lightgcn_dir if args.format == "lightgcn" else load_triples_dir
    full, _ = load(args.data)
    own_val = has_split(full, "val")
    tune_data = full if own_val else with_validation(full, args.val_ratio, seed=args.seed)
    nu, ni = int(full["user"].num_nodes), int(full["item"].num_nodes)
    out = Path(args.out)
    if args.embeddings_from and not own_val and not (args.skip_retrain or args.full_only):
        p.error("--embeddings-from with a carved validation split: the tuning run must start from a model "
                "pretrained on the carved train and the retrain from one pretrained on the full train; run "
                "them separately with --skip-retrain and --full-only")

    def build():  # type: ignore[no-untyped-def]
        seed_everything(args.seed)
        enc, scorer = build_model(args.model, nu, ni, model_args)
        if args.embeddings_from:
            state = torch.load(args.embeddings_from, map_location="cpu", weights_only=False)
            enc.load_embeddings(state.get("encoder", state), source=args.embeddings_from)
            log.info("user/item embeddings initialised from %s", args.embeddings_from)
        return enc, scorer

    if args.full_only:
        enc, scorer = build()
        full_args = {**train_args, "seed": args.seed, "patience": 0}
        if args.milestones_from:
            hist = [json.loads(line) for line in open(args.milestones_from, encoding="utf-8") if line.strip()]
            full_args.update(lr_milestones=lr_decay_epochs(hist), lr_plateau=0)
            log.info("replaying lr decays after epochs %s from %s", full_args["lr_milestones"], args.milestones_from)
        fcfg = TrainConfig.from_flat(full_args, "train", objective=objective)
        t0 = time.perf_counter()
        res = Trainer(fcfg).fit(enc, full, scorer, out_dir=out / "full_log", log_splits=("test",),
                                init_from=args.init_from, keep_every=args.keep_every)
        print(f"model={args.model} data={args.data} model_args={json.dumps(model_args)} "
              f"train={json.dumps(train_args)} objective={json.dumps(objective)} full train, test logged every {fcfg.eval_every} epochs")
        print()
        print("| epochs | test recall@20 | test ndcg@20 | cumulative train s |")
        print("|---|---|---|---|")
        cum = 0.0
        for h in res.history:
            cum += h["train_s"]
            if "test/recall@20" in h:
                print(f"| {h['epoch']} | {h['test/recall@20']:.4f} | {h['test/ndcg@20']:.4f} | {cum:.0f} |")
        log.info("total %.0f s", time.perf_counter() - t0)
        return

    enc, scorer = build()
    tcfg = TrainConfig.from_flat({**train_args, "seed": args.seed}, "train", objective=objective)
    t0 = time.perf_counter()
    tuned = Trainer(tcfg).fit(enc, tune_data, scorer, out_dir=out / "tune", init_from=args.init_from,
                              keep_every=args.keep_every)
    tune_s = time.perf_counter() - t0
    epochs_run = len(tuned.history)
    rows = [("validation run", tuned.best_epoch, epochs_run, tuned.val, tuned.test if own_val else {}, tune_s)]
    if not own_val and not args.skip_retrain:
        enc, scorer = build()
        # the retrain has no validation split: replay the tuning run's lr decays as milestones
        milestones = tuple(m for m in lr_decay_epochs(tuned.history) if m < tuned.best_epoch)
        rcfg = TrainConfig.from_flat({**train_args, "seed": args.seed, "epochs": tuned.best_epoch,
                                            "eval_every": 0, "patience": 0, "lr_plateau": 0,
                                            "lr_milestones": milestones},
                                     "train", objective=objective)
        t0 = time.perf_counter()
        final = Trainer(rcfg).fit(enc, full, scorer, out_dir=out / "full")
        rows.append(("retrain on full train", tuned.best_epoch, tuned.best_epoch, {}, final.test,
                     time.perf_counter() - t0))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"model={args.model} data={args.data} model_args={json.dumps(model_args)} train={json.dumps(train_args)} "
          f"objective={json.dumps(objective)} torch={torch.__version__} threads={args.threads} peak_rss={peak:.2f}GiB")
    print()
    print("| run | epochs (chosen/run) | val recall@20 | val ndcg@20 | test recall@20 | test ndcg@20 | paper recall@20 | paper ndcg@20 | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, best, run, val, test, secs in rows:
        f = lambda d, k: f"{d[k]:.4f}" if k in d else "-"  # noqa: E731
        print(f"| {name} | {best}/{run} | {f(val, 'recall@20')} | {f(val, 'ndcg@20')} | {f(test, 'recall@20')} | "
              f"{f(test, 'ndcg@20')} | {args.paper_recall or '-'} | {args.paper_ndcg or '-'} | {secs:.0f} |")


if __name__ == "__main__":
    main()
