"""Do hard negatives help? PinSAGE and LightGCN with uniform, shared and PPR hard negatives (issue 5).

Each configuration is one `graphcf train` run in its own process (so peak RSS is per run, and a
killed run resumes from its checkpoint when the script is started again with the same --out):
model selection on validation Recall@20 (early stopping), test Recall@20 / NDCG@20 of the best
validation epoch. Data without a validation split (Gowalla) get one carved out of train
(`--val-ratio`, seeded); the test figures are then those of the model trained on the carved train,
which is the same for every configuration (an ablation, not the papers' retrain protocol).
The PPR hard-negative cache is computed once per dataset and shared by the runs (`train.ppr_cache`).

Configurations (`--configs`, comma-separated; default all):
  pinsage-uniform       PinSAGE, max-margin loss, 1 uniform negative per positive
  pinsage-shared        + 500 uniform negatives shared by the mini-batch (instead of per positive)
  pinsage-shared-ppr    + 1 PPR hard negative per positive (band 2000-5000 or scaled)
  pinsage-curriculum    + curriculum: epoch n uses n-1 hard negatives per positive (cap --hard-cap)
  lightgcn-uniform      LightGCN, BPR, 1 uniform negative
  lightgcn-ppr          + 1 PPR hard negative per positive

Prints one Markdown table to stdout; logs go to stderr.

Example:
  python benchmarks/ablation_negatives.py --data ../shared/data/amazon-beauty --format triples \
      --epochs 60 --out runs/ablation_beauty

``--set MODEL:section.key=value`` overrides one model's runs only (``--set pinsage:train.batch_size=8192``);
``--set section.key=value`` every run. A configuration whose run directory already holds results is
not rerun; if its stored ``ablation.yaml`` differs from what the command builds, the script stops
rather than report results of another configuration.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduce import _set  # noqa: E402  (section.key=value overrides, same syntax as reproduce.py)
log = logging.getLogger("ablation")

PINSAGE = {"loss": "margin", "margin": 0.1, "reg": 0.0}
CONFIGS: Dict[str, Dict[str, Any]] = {
    "pinsage-uniform": {"model": "pinsage", "train": {**PINSAGE, "sampler": "uniform", "num_negatives": 1}},
    "pinsage-shared": {"model": "pinsage", "train": {**PINSAGE, "sampler": "shared", "num_negatives": 500}},
    "pinsage-shared-ppr": {"model": "pinsage", "train": {**PINSAGE, "sampler": "shared", "num_negatives": 500,
                                                         "hard_negatives": 1}},
    "pinsage-curriculum": {"model": "pinsage", "train": {**PINSAGE, "sampler": "shared", "num_negatives": 500,
                                                         "hard_negatives": "CAP", "curriculum": True}},
    "lightgcn-uniform": {"model": "lightgcn", "train": {"loss": "bpr", "sampler": "uniform", "num_negatives": 1}},
    "lightgcn-ppr": {"model": "lightgcn", "train": {"loss": "bpr", "sampler": "uniform", "num_negatives": 1,
                                                    "hard_negatives": 1}},
}

MODELS = sorted({c["model"] for c in CONFIGS.values()})


def apply_overrides(cfg: Dict[str, Any], overrides: List[str]) -> Dict[str, Any]:
    """Apply ``--set`` overrides to one run's config in place: ``section.key=value`` to every run,
    ``MODEL:section.key=value`` only to runs of that model (``cfg["model"]``)."""
    for a in overrides:
        model, sep, rest = a.partition(":")
        if sep and "=" not in model:
            if model not in MODELS:
                raise SystemExit(f"--set {a!r}: unknown model {model!r}; known: {MODELS}")
            if model == cfg["model"]:
                _set(cfg, rest)
        else:
            _set(cfg, a)
    return cfg


def build_config(name: str, args: argparse.Namespace, out: Path) -> Dict[str, Any]:
    """The ``graphcf train`` config of configuration ``name`` under the command line ``args``."""
    spec = CONFIGS[name]
    train = {k: (args.hard_cap if v == "CAP" else v) for k, v in spec["train"].items()}
    if args.lr is not None:
        train["lr"] = args.lr
    train.update(epochs=args.epochs, batch_size=args.batch_size, eval_every=args.eval_every,
                 patience=args.patience, seed=args.seed, ks=[20], ppr_cache=str(out / "ppr_cache.pt"))
    if args.ppr_band:
        train["ppr_band"] = list(args.ppr_band)
    cfg: Dict[str, Any] = {"model": spec["model"], "model_args": {}, "train": train,
                           "data": {"path": args.data, "format": args.format,
                                    "val_ratio": args.val_ratio if args.format == "lightgcn" else 0.0,
                                    "seed": args.seed}}
    return apply_overrides(cfg, args.set)


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "amazon-beauty"))
    p.add_argument("--format", choices=["lightgcn", "triples"], default="triples")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--lr", type=float, help="learning rate of every run (default: each model's own, "
                                             "graphcf.models.DEFAULT_TRAIN: PinSAGE 5e-3, LightGCN 1e-3)")
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--hard-cap", type=int, default=5, help="cap of the curriculum's hard negatives per positive")
    p.add_argument("--ppr-band", type=int, nargs=2, help="PPR rank band (default: 2000-5000, scaled down for "
                                                          "small catalogues)")
    p.add_argument("--val-ratio", type=float, default=0.1, help="carved validation ratio for data without one")
    p.add_argument("--set", action="append", default=[],
                   help="extra override for every run, e.g. train.reg=1e-4, or for one model's runs only, "
                        "e.g. pinsage:train.batch_size=8192")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/ablation")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        raise SystemExit(f"unknown --configs {unknown}; known: {sorted(CONFIGS)}")
    rows: List[Dict[str, Any]] = []
    for name in names:
        cfg = build_config(name, args, out)
        run_dir = out / name
        run_dir.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(cfg, sort_keys=False)
        saved = run_dir / "ablation.yaml"
        if (run_dir / "results.json").exists() and saved.exists() and saved.read_text() != text:
            raise SystemExit(f"{run_dir}: its results.json comes from another configuration ({saved}); "
                             f"use another --out, or delete {run_dir} to rerun it")
        saved.write_text(text)
        if not (run_dir / "results.json").exists():
            cmd = [sys.executable, "-m", "graphcf", "train", "--config", str(run_dir / "ablation.yaml"), "--out",
                   str(run_dir), "--threads", str(args.threads), "--no-progress"]
            log.info("%s: %s", name, " ".join(cmd))
            env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
            subprocess.run(cmd, check=True, env=env, cwd=REPO, stdout=subprocess.DEVNULL)
        res = json.loads((run_dir / "results.json").read_text())
        used = yaml.safe_load((run_dir / "config.yaml").read_text())["train"]  # as resolved by the run
        hist = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
        train_s = [h["train_s"] for h in hist]
        rows.append({
            "name": name, "best": res["best_epoch"], "run": len(hist), "val": res["val"], "test": res["test"],
            "batch": used["batch_size"], "lr": used["lr"],
            "s_epoch": sorted(train_s)[len(train_s) // 2] if train_s else float("nan"),
            "rss": max((h.get("peak_rss_mb", 0.0) for h in hist), default=float("nan")) / 1024,
        })
    print(f"data={args.data} epochs<={args.epochs} eval_every={args.eval_every} patience={args.patience} "
          f"threads={args.threads} seed={args.seed} overrides={args.set} (batch and lr per row, as each run "
          f"resolved them in its config.yaml)")
    print()
    print("| config | batch | lr | best epoch / run | val recall@20 | val ndcg@20 | test recall@20 | test ndcg@20 "
          "| median s/epoch | peak RSS GiB |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        v, t = r["val"], r["test"]
        print(f"| {r['name']} | {r['batch']} | {r['lr']} | {r['best']}/{r['run']} | {v.get('recall@20', float('nan')):.4f} | "
              f"{v.get('ndcg@20', float('nan')):.4f} | {t.get('recall@20', float('nan')):.4f} | "
              f"{t.get('ndcg@20', float('nan')):.4f} | {r['s_epoch']:.1f} | {r['rss']:.2f} |")


if __name__ == "__main__":
    main()
