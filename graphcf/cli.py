"""The ``graphcf`` command line: datasets, train, evaluate, recommend."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import yaml

logger = logging.getLogger("graphcf.cli")


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# -- datasets -----------------------------------------------------------------
def cmd_datasets(args: argparse.Namespace) -> int:
    from graphcf.data import datasets

    if args.action == "list":
        for name in datasets.list_datasets():
            print(name)
        print("synthetic (generated locally, no download)")
        return 0
    if not args.name:
        raise SystemExit(f"graphcf datasets {args.action}: give a dataset name")
    if args.action == "describe":
        print(datasets.describe(args.name))
        return 0
    data, idmap = datasets.load_dataset(args.name, root=args.root, progress=not args.no_progress)
    print(data)
    return 0


# -- train --------------------------------------------------------------------
#: ``graphcf train`` flags that set objective settings: flag attribute -> settings key
_OBJECTIVE_FLAGS = {"num_negatives": "num_negatives", "hard_negatives": "hard_negatives"}


def _resolve_config(args: argparse.Namespace) -> Dict[str, Any]:
    """The run's config: the model's registry defaults, under the YAML file's sections, under the flags.

    Returns the sections ``model``, ``model_args``, ``data``, ``train`` and ``objective`` (its ``name``
    is the loss); objective settings written flat in ``train`` (the older layout) are moved into
    ``objective`` with a warning that gives the new spelling.
    """
    from graphcf.config import load_config
    from graphcf.models import MODELS, resolve_sections

    cfg: Dict[str, Any] = load_config(args.config) if args.config else {}
    for section in ("model_args", "data", "train", "objective"):
        cfg[section] = dict(cfg.get(section) or {})
    if args.model:
        cfg["model"] = args.model
    cfg.setdefault("model", "mf")
    if cfg["model"] not in MODELS:
        raise ValueError(f"unknown model {cfg['model']!r}; known models: {sorted(MODELS)}")
    user_train, user_obj = cfg["train"], cfg["objective"]
    if getattr(args, "pretrained", None) and "optimizer" not in user_train:
        user_train["optimizer"] = "sgd"  # the paper fine-tunes the fused NeuMF with vanilla SGD
    user_set = set(user_obj) | set(user_train)  # keys the user gave (model defaults aside)
    train, obj = resolve_sections(cfg["model"], user_train, user_obj, loss=args.loss, where=args.config or "config")
    name = obj.pop("name")
    if args.dataset:
        cfg["data"]["dataset"] = args.dataset
    if args.path:
        cfg["data"]["path"] = args.path
    if args.format:
        cfg["data"]["format"] = args.format
    if args.seed is not None:
        train["seed"] = args.seed
        cfg["data"].setdefault("seed", args.seed)
    for key in ("epochs", "lr", "batch_size", "sampling", "num_neighbors", "device"):
        val = getattr(args, key, None)
        if val is not None:
            train[key] = val
    if args.dim is not None:
        cfg["model_args"]["dim"] = args.dim
    if args.negatives not in (None, "ppr"):  # an easy sampler (--negatives choices: NEGATIVE_SAMPLERS + ppr)
        if (args.negatives != "shared" and obj.get("sampler") == "shared"
                and "num_negatives" not in user_set and args.num_negatives is None):
            obj["num_negatives"] = 1  # the model's default count was per batch, not per positive
        obj["sampler"] = args.negatives
    for flag, key in _OBJECTIVE_FLAGS.items():
        if getattr(args, flag) is not None:
            obj[key] = getattr(args, flag)
    if args.hard_negatives is None and (args.negatives == "ppr" or args.curriculum) and not obj.get("hard_negatives"):
        # --negatives ppr: one PPR hard negative per positive; --curriculum: up to 5 (epochs 2..6 add one each)
        obj["hard_negatives"] = 5 if args.curriculum else 1
    if args.curriculum:
        obj["curriculum"] = True
    cfg["train"], cfg["objective"] = train, {"name": name, **obj}
    return cfg


def _build(cfg: Dict[str, Any]):  # type: ignore[no-untyped-def]
    """``(data_cfg, train_cfg, data, idmap, model)`` of a resolved config."""
    from graphcf.config import dataclass_from
    from graphcf.data.source import DataConfig, load_data
    from graphcf.models import make_model
    from graphcf.train import TrainConfig

    data_cfg = dataclass_from(DataConfig, cfg["data"], "config section 'data'")
    train_cfg = TrainConfig.from_flat(cfg["train"], "config section 'train'", objective=cfg.get("objective"))
    data, idmap = load_data(data_cfg)
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    model = make_model(cfg["model"], nu, ni, cfg["model_args"])
    return data_cfg, train_cfg, data, idmap, model


def _versions() -> Dict[str, str]:
    import torch
    import torch_geometric

    import graphcf

    return {"graphcf": graphcf.__version__, "torch": torch.__version__,
            "torch_geometric": torch_geometric.__version__, "python": platform.python_version()}


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from graphcf.model import FactorModel
    from graphcf.seed import seed_everything
    from graphcf.train import Trainer

    cfg = _resolve_config(args)
    seed_everything(int(cfg["train"].get("seed", 0)))
    torch.set_num_threads(args.threads) if args.threads else None
    if args.pretrained and cfg["model"] != "neumf":
        raise ValueError(f"--pretrained initialises NeuMF from GMF and MLP runs, not model {cfg['model']!r}")
    data_cfg, train_cfg, data, idmap, model = _build(cfg)
    if args.pretrained:
        encoder, scorer = _neumf_from_runs(args.pretrained, args.alpha, (model.num_users, model.num_items))
        model = FactorModel(encoder, scorer)
        cfg["model_args"] = {"gmf_dim": encoder.gmf_dim, "mlp_dim": encoder.mlp_dim,
                             "num_layers": scorer.num_layers}
    if args.embeddings_from:
        if not isinstance(model, FactorModel):
            raise ValueError(f"--embeddings-from: model {cfg['model']!r} has no embedding tables")
        _embeddings_from_run(model.encoder, idmap, Path(args.embeddings_from))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_section, objective_section = train_cfg.sections()
    train_section.pop("loss", None)  # objective.name
    resolved = {"model": cfg["model"], "model_args": cfg["model_args"],
                "data": dataclasses.asdict(data_cfg), "train": train_section, "objective": objective_section}
    resolved["data"]["ratios"] = list(resolved["data"]["ratios"])
    _atomic_write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    idmap.save(out / "idmap.json")
    logger.info("data: %s", str(data).replace("\n", " "))
    logger.info("model: %s", model)
    t0 = time.perf_counter()
    result = Trainer(train_cfg, progress=not args.no_progress).fit(model, data, out_dir=out,
                                                                   resume=not args.no_resume)
    summary = {
        "model": cfg["model"], "best_epoch": result.best_epoch, "val": result.val, "test": result.test,
        "train_seconds": time.perf_counter() - t0, "fit_seconds": result.fit_seconds,
        "device": str(model.device), "versions": _versions(),
    }
    _atomic_write_text(out / "results.json", json.dumps(summary, indent=2))
    print(json.dumps({"model": cfg["model"], "best_epoch": result.best_epoch, "test": result.test}, indent=2))
    logger.info("wrote %s", out / "results.json")
    return 0


def _neumf_from_runs(runs: Sequence[str], alpha: float, universe: tuple):  # type: ignore[no-untyped-def]
    """NeuMF fused from a trained GMF run and a trained MLP run (``graphcf train`` output dirs)."""
    from graphcf.nn.scorers_ncf import neumf_from_pretrained

    if len(runs) != 2:
        raise ValueError(f"--pretrained takes two run directories (GMF, then MLP), got {len(runs)}")
    parts = []
    for run, want in zip(runs, ("gmf", "mlp")):
        cfg, _, _, _, model = _load_run(Path(run))
        if cfg["model"] != want:
            raise ValueError(f"--pretrained: {run} holds model {cfg['model']!r}, expected {want!r}")
        if (model.num_users, model.num_items) != universe:
            raise ValueError(f"--pretrained: {run} was trained on {model.num_users} x {model.num_items}, "
                             f"this data is {universe[0]} x {universe[1]}")
        parts += [model.encoder, model.scorer]
    return neumf_from_pretrained(*parts, alpha=alpha)


def _model_state(path: Path) -> Dict[str, Any]:
    """The model state of a run's ``best.pt`` (``{"model": ...}``, or the older ``{"encoder", "scorer"}``)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if "model" in state:
        return state["model"]
    return {**{f"encoder.{k}": v for k, v in state.get("encoder", {}).items()},
            **{f"scorer.{k}": v for k, v in state.get("scorer", {}).items()}}


def _embeddings_from_run(encoder, idmap, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Copy the user/item embedding tables of a trained run (its ``best.pt``) into ``encoder``."""
    from graphcf.data.idmap import IdMap

    ckpt, ids = run_dir / "best.pt", run_dir / "idmap.json"
    for f in (ckpt, ids):
        if not f.is_file():
            raise FileNotFoundError(f"--embeddings-from: {f} does not exist (expected a `graphcf train` output "
                                    "directory)")
    if IdMap.load(ids).to_dict() != idmap.to_dict():
        raise ValueError(f"--embeddings-from: {run_dir} was trained with other user/item ids than this data "
                         f"({ids} differs), so its embedding rows would belong to other nodes")
    state = {k[len("encoder."):]: v for k, v in _model_state(ckpt).items() if k.startswith("encoder.")}
    encoder.load_embeddings(state, source=str(ckpt))
    logger.info("user/item embeddings initialised from %s", ckpt)


def _load_run(run_dir: Path, device: Optional[str] = None):  # type: ignore[no-untyped-def]
    """``(cfg, train_cfg, data, idmap, model)`` of a trained run directory, the model restored from ``best.pt``."""
    from graphcf.config import load_config
    from graphcf.data.idmap import IdMap
    from graphcf.device import resolve_device

    for f in ("config.yaml", "best.pt", "idmap.json"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir / f} does not exist (expected a finished `graphcf train` output "
                                    "directory)")
    cfg = load_config(run_dir / "config.yaml")
    data_cfg, train_cfg, data, _, model = _build(cfg)
    idmap = IdMap.load(run_dir / "idmap.json")
    model.load_state_dict(_model_state(run_dir / "best.pt"))
    model.to(resolve_device(device or "cpu"))
    model.eval()
    return cfg, train_cfg, data, idmap, model


def cmd_evaluate(args: argparse.Namespace) -> int:
    from graphcf.evaluators import FullRankingEvaluator
    from graphcf.train.trainer import _on

    run = Path(args.run_dir)
    cfg, train_cfg, data, idmap, model = _load_run(run, args.device)
    ks = tuple(args.ks) if args.ks else train_cfg.ks
    metrics = FullRankingEvaluator(ks, progress=not args.no_progress).evaluate(model, _on(data, model.device),
                                                                                args.split)
    _atomic_write_text(run / f"eval_{args.split}.json", json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from graphcf.train.trainer import _on

    cfg, _, data, idmap, model = _load_run(Path(args.run_dir), args.device)
    raw_users = np.asarray(args.users)
    if idmap.users.raw.dtype.kind in "iu":
        raw_users = raw_users.astype(np.int64)
    users = torch.from_numpy(idmap.encode_users(raw_users))
    top = model.topk(_on(data, model.device), users, k=args.k)
    for raw_u, items, scores in zip(args.users, idmap.decode_items(top.indices.cpu()), top.scores.cpu().tolist()):
        print(json.dumps({"user": raw_u, "items": [x.item() if hasattr(x, "item") else x for x in items],
                          "scores": [round(s, 6) for s in scores]}))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from graphcf.plot import plot_run

    path = plot_run(args.run_dir, args.out)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="graphcf", description="Graph collaborative filtering on PyG.")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("datasets", help="list / describe / download registry datasets")
    d.add_argument("action", choices=["list", "describe", "download"])
    d.add_argument("name", nargs="?")
    d.add_argument("--root", help="cache directory (default $GRAPHCF_DATA or ~/.cache/graphcf)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_datasets)

    from graphcf.device import DEVICE_CHOICES
    from graphcf.models import MODELS
    from graphcf.objectives import NEGATIVE_SAMPLERS, OBJECTIVES

    models_help = "; ".join(f"{n}: {s.summary}" for n, s in MODELS.items())
    t = sub.add_parser("train", help="train (or fit, for a training-free model) and evaluate a model; "
                                     "writes OUT/results.json")
    t.add_argument("--model", metavar="MODEL",
                   help=f"model (default mf), a name of the registry graphcf.models.MODELS: {models_help}")
    t.add_argument("--dataset", help="registry name or 'synthetic' (default)")
    t.add_argument("--path", help="local data file or directory instead of --dataset")
    t.add_argument("--format", help="format of --path: lightgcn, triples, ncf, movielens, csv")
    t.add_argument("--config", help="YAML config with sections model, model_args, data, train, objective")
    t.add_argument("--seed", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--dim", type=int, help="embedding size (model_args.dim)")
    t.add_argument("--sampling", choices=["full", "neighbor"],
                   help="graph encoders: propagate over the full graph per batch (default) or train on "
                        "neighbour-sampled subgraphs (train.sampling)")
    t.add_argument("--num-neighbors", dest="num_neighbors", type=int, nargs="+",
                   help="neighbours per node and hop with --sampling neighbor, e.g. 10 10 10 (train.num_neighbors)")
    t.add_argument("--loss", choices=list(OBJECTIVES),
                   help="training objective (objective.name; default: the model's own, e.g. margin for pinsage): "
                        + "; ".join(f"{n}: {s.summary}" for n, s in OBJECTIVES.items()))
    t.add_argument("--device", help=f"where to train and evaluate: {', '.join(DEVICE_CHOICES)} or cuda:N "
                                    "(train.device; default auto: CUDA when available, else CPU)")
    t.add_argument("--negatives", choices=list(NEGATIVE_SAMPLERS) + ["ppr"],
                   help="negatives of the pairwise losses: uniform / popularity per positive, shared by the "
                        "mini-batch (objective.sampler), or ppr: personalised-PageRank hard negatives added to the "
                        "model's easy ones (objective.hard_negatives, default 1)")
    t.add_argument("--num-negatives", dest="num_negatives", type=int,
                   help="easy negatives per positive, or per mini-batch with --negatives shared (objective.num_negatives)")
    t.add_argument("--hard-negatives", dest="hard_negatives", type=int,
                   help="PPR hard negatives per positive (with --curriculum: the cap; objective.hard_negatives)")
    t.add_argument("--curriculum", action="store_true",
                   help="PinSAGE's curriculum: epoch n adds n-1 PPR hard negatives per positive, up to "
                        "--hard-negatives (default 5; objective.curriculum)")
    t.add_argument("--threads", type=int, help="torch threads")
    t.add_argument("--out", default="runs/latest", help="output directory (default runs/latest)")
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in --out")
    t.add_argument("--pretrained", nargs=2, metavar=("GMF_RUN", "MLP_RUN"),
                   help="neumf only: initialise from trained GMF and MLP run directories (NCF section 3.4.1); "
                        "the optimiser defaults to SGD as in the paper")
    t.add_argument("--alpha", type=float, default=0.5, help="GMF/MLP trade-off of --pretrained (default 0.5)")
    t.add_argument("--embeddings-from", dest="embeddings_from", metavar="RUN",
                   help="initialise the user/item embedding tables from a trained run directory on the same "
                        "data (e.g. NGCF from MF: the NGCF authors' --pretrain -1); other parameters as usual")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a trained run directory")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test")
    e.add_argument("--ks", type=int, nargs="+")
    e.add_argument("--device", help="where to evaluate (default cpu)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("recommend", help="top-K items (raw ids) for raw user ids from a run directory")
    r.add_argument("run_dir")
    r.add_argument("--users", nargs="+", required=True, help="raw user ids")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--device", help="where to score (default cpu)")
    r.set_defaults(func=cmd_recommend)
    pl = sub.add_parser("plot", help="draw training curves (loss, validation metrics) of a run to PNG")
    pl.add_argument("run_dir")
    pl.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    pl.set_defaults(func=cmd_plot)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, KeyError, MemoryError) as e:
        logger.error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
