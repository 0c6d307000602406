"""Benchmark: the NCF paper's experiments (He et al., WWW 2017) in miniature on ML-100K.

Usage::

    python benchmarks/bench_ncf_ml100k.py [--data ../shared/data/ml-100k/u.data]
        [--factors 8,16,32,64] [--epochs 20] [--patience 3] [--threads 1]

Protocol
    * Data: every rating of ``u.data`` is an implicit interaction (943 users, 1682 items).
    * Split: :func:`graphcf.data.split.leave_one_out` (seed 0): each user's latest
      interaction is test, the second latest validation, the rest train.
    * Evaluation: :class:`graphcf.evaluators.NCFEvaluator` on graphcf's :class:`~graphcf.train.Trainer`
      (the NCF protocol, :func:`graphcf.evaluate.ncf_protocol_model`), the held-out item ranked among
      99 sampled items the user never interacted with in *any* split
      (:func:`graphcf.evaluate.sample_ncf_negatives`, seeded; separate negatives for
      validation and test); HR@10 and NDCG@10, ties counted against the positive.
    * Training: pointwise log loss with 4 fresh uniform negatives per positive each epoch
      (:class:`graphcf.objectives.PointwiseObjective`), batch 256, Adam lr 1e-3, no L2.
      After every epoch the model is validated (same 1 + 99 protocol on the validation
      items); training stops after ``--patience`` epochs without a better validation
      HR@10 (at most ``--epochs``), and the test numbers are those of the best
      validation epoch (encoder *and* scorer state restored).
    * Models per predictive factors F: GMF (dim F); MLP with 0..4 hidden layers and F
      predictive factors (embedding per side F * 2^(L-1), F/2 for MLP-0; e.g. F=8, L=3:
      64 -> 32 -> 16 -> 8); NeuMF = GMF (F) + MLP-3 (F), from scratch (Adam) and from the
      pretrained GMF and MLP-3 of the same table (alpha = 0.5, then vanilla SGD as in the
      paper, its learning rate picked on validation from ``--sgd-lrs``; epoch 0, the
      fused pretrained model itself, is a candidate too).

Prints two Markdown tables to stdout (results; the paper's qualitative findings
checked); logs go to stderr.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphcf.data import encode, read_movielens, split_edge_index, to_heterodata, train_edge_index  # noqa: E402
from graphcf.data.split import leave_one_out  # noqa: E402
from graphcf.evaluate import sample_ncf_negatives  # noqa: E402
from graphcf.evaluators import NCFEvaluator  # noqa: E402
from graphcf.model import FactorModel  # noqa: E402
from graphcf.nn.encoders.base import Encoder  # noqa: E402
from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder, mlp_embedding_dim  # noqa: E402
from graphcf.nn.scorers import Scorer  # noqa: E402
from graphcf.nn.scorers_ncf import GMFScorer, MLPScorer, NeuMFScorer, neumf_from_pretrained  # noqa: E402
from graphcf.train import Trainer, TrainConfig  # noqa: E402

logger = logging.getLogger("bench_ncf")

MLP_LAYERS = (0, 1, 2, 3, 4)
NEUMF_LAYERS = 3


# ------------------------------------------------------------------ data


@dataclass
class EvalSet:
    """One held-out split in the 1 + 99 protocol."""

    users: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor


def load(path: Path, seed: int, num_negatives: int) -> Tuple[Any, EvalSet, EvalSet]:
    raw = read_movielens(path)
    encoded, _ = encode({"all": raw})
    inter = encoded["all"]
    splits = leave_one_out(inter, with_val=True, seed=seed)
    data = to_heterodata(splits)
    nu, ni = inter.num_users, inter.num_items
    every = torch.stack([inter.user, inter.item])  # negatives avoid every interaction of the user
    g = torch.Generator().manual_seed(seed)
    sets = []
    for name in ("val", "test"):
        ei = split_edge_index(data, name)
        neg = sample_ncf_negatives(every, ei[0], ei[1], ni, num_negatives, generator=g)
        sets.append(EvalSet(ei[0], ei[1], neg))
    logger.info("ML-100K: %d users, %d items, %d train / %d val / %d test interactions", nu, ni,
                train_edge_index(data).size(1), sets[0].users.numel(), sets[1].users.numel())
    return data, sets[0], sets[1]


# ------------------------------------------------------------------ training


@dataclass
class Result:
    model: str
    factors: int
    hr: float = math.nan
    ndcg: float = math.nan
    val_hr: float = math.nan
    best_epoch: int = 0
    epochs_run: int = 0
    seconds: float = 0.0
    note: str = ""
    history: List[float] = field(default_factory=list)


def fit(name: str, factors: int, encoder: Encoder, scorer: Scorer, data: Any, val: EvalSet, test: EvalSet,
        cfg: TrainConfig, patience: int, eval_initial: bool = False) -> Tuple[Result, Dict[str, Any]]:
    """Train on graphcf's Trainer with the NCF evaluator: early stopping on validation HR@10 (the epoch-0
    model a candidate too with ``eval_initial``), the best state restored, test HR@10 / NDCG@10."""
    t0 = time.perf_counter()
    evaluator = NCFEvaluator(ks=(10,))
    evaluator.set_eval_set("val", val.users, val.pos, val.neg)
    evaluator.set_eval_set("test", test.users, test.pos, test.neg)
    cfg = dataclasses.replace(cfg, eval_every=1, patience=patience, metric="hr@10", ks=(10,))
    model = FactorModel(encoder, scorer)  # trains encoder and scorer in place
    out = Trainer(cfg, evaluator=evaluator).fit(model, data, validate_initial=eval_initial)
    res = Result(name, factors)
    res.history = [h["val/hr@10"] for h in out.history if "val/hr@10" in h]
    res.best_epoch, res.epochs_run = out.best_epoch, max(h["epoch"] for h in out.history)
    res.hr, res.ndcg, res.val_hr = out.test["hr@10"], out.test["ndcg@10"], out.val["hr@10"]
    res.seconds = time.perf_counter() - t0
    logger.info("%s F=%d: test hr@10 %.4f ndcg@10 %.4f (best epoch %d, %.0fs)", name, factors, res.hr, res.ndcg,
                res.best_epoch, res.seconds)
    return res, model.state_dict()


def run_factor(f: int, data: Any, val: EvalSet, test: EvalSet, args: argparse.Namespace) -> List[Result]:
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    adam = TrainConfig(epochs=args.epochs, batch_size=256, lr=1e-3, loss="bce", objective={"num_negatives": 4, "reg": 0.0},
                       optimizer="adam", seed=args.seed)
    out: List[Result] = []

    torch.manual_seed(args.seed)
    gmf_enc, gmf_sc = GMFEncoder(nu, ni, dim=f), GMFScorer(f)
    r, _ = fit("GMF", f, gmf_enc, gmf_sc, data, val, test, adam, args.patience)
    out.append(r)

    mlp3: Optional[Tuple[MLPEncoder, MLPScorer]] = None
    for layers in MLP_LAYERS:
        if f % 2 and layers == 0:
            continue
        dim = mlp_embedding_dim(f, layers)
        torch.manual_seed(args.seed)
        enc, sc = MLPEncoder(nu, ni, dim=dim), MLPScorer(dim, layers)
        r, _ = fit(f"MLP-{layers}", f, enc, sc, data, val, test, adam, args.patience)
        r.note = f"emb {dim}/side, tower {'->'.join(map(str, sc.tower.sizes))}"
        out.append(r)
        if layers == NEUMF_LAYERS:
            mlp3 = (enc, sc)

    mlp_dim = mlp_embedding_dim(f, NEUMF_LAYERS)
    torch.manual_seed(args.seed)
    enc, sc = NeuMFEncoder(nu, ni, gmf_dim=f, mlp_dim=mlp_dim), NeuMFScorer(f, mlp_dim, NEUMF_LAYERS)
    r, _ = fit("NeuMF", f, enc, sc, data, val, test, adam, args.patience)
    r.note = f"GMF {f} + MLP-{NEUMF_LAYERS} {f}, Adam"
    out.append(r)

    assert mlp3 is not None
    # NeuMF with pretraining: GMF and MLP-3 above (their best-validation states), SGD, lr on validation
    best: Optional[Tuple[float, Result]] = None
    tried: List[str] = []
    for lr in args.sgd_lrs:
        enc, sc = neumf_from_pretrained(gmf_enc, gmf_sc, mlp3[0], mlp3[1], alpha=0.5)
        sgd = TrainConfig(epochs=args.epochs, batch_size=256, lr=lr, loss="bce", objective={"num_negatives": 4, "reg": 0.0},
                          optimizer="sgd", seed=args.seed)
        r, _ = fit(f"NeuMF-pre(lr={lr:g})", f, enc, sc, data, val, test, sgd, args.patience, eval_initial=True)
        tried.append(f"{lr:g}: {r.val_hr:.3f}")
        if best is None or r.val_hr > best[1].val_hr:
            best = (lr, r)
    assert best is not None
    lr, r = best
    r.model = "NeuMF-pre"
    r.note = (f"alpha 0.5, SGD lr {lr:g} picked on val (val HR@10 by lr: {'; '.join(tried)}); "
              f"epoch 0 = fused pretrained model")
    out.append(r)
    return out


# ------------------------------------------------------------------ report


def _noise(p: float, n: int) -> float:
    """~1.96 standard errors of a difference of two HR estimates over ``n`` users (independent approx.)."""
    return 1.96 * math.sqrt(2 * max(p * (1 - p), 1e-12) / max(n, 1))


def results_table(results: Sequence[Result]) -> str:
    lines = ["| model | factors | HR@10 | NDCG@10 | val HR@10 | best epoch | epochs run | seconds | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r.model} | {r.factors} | {r.hr:.4f} | {r.ndcg:.4f} | {r.val_hr:.4f} | {r.best_epoch} | "
                     f"{r.epochs_run} | {r.seconds:.0f} | {r.note} |")
    return "\n".join(lines)


def findings_table(results: Sequence[Result], n_test: int) -> str:
    by: Dict[Tuple[str, int], Result] = {(r.model, r.factors): r for r in results}
    factors = sorted({r.factors for r in results})

    def verdict(a: float, b: float) -> str:
        """Does ``a > b`` hold? (``a``, ``b`` test HR@10)."""
        tol = _noise((a + b) / 2, n_test)
        if a - b > tol:
            return "holds"
        if a - b >= 0:
            return "holds (within noise)"
        if b - a <= tol:
            return "fails (within noise)"
        return "fails"

    rows: List[Tuple[str, Dict[int, str]]] = []

    def cell(f: int, a: Optional[Result], b: Optional[Result], label_b: str) -> str:
        if a is None or b is None:
            return "n/a"
        return f"{verdict(a.hr, b.hr)}: {a.hr:.3f} vs {label_b} {b.hr:.3f}"

    row: Dict[int, str] = {}
    for f in factors:
        deeper = [by.get((f"MLP-{l}", f)) for l in MLP_LAYERS[1:]]
        deeper = [d for d in deeper if d is not None]
        m0 = by.get(("MLP-0", f))
        if m0 is None or not deeper:
            row[f] = "n/a"
            continue
        worst = min(deeper, key=lambda r: r.hr)
        gap = worst.hr - m0.hr
        row[f] = (f"{'holds' if gap > 0.05 else ('weakly' if gap > 0 else 'fails')}: "
                  f"{m0.hr:.3f} vs worst deeper {worst.model} {worst.hr:.3f}")
    rows.append(("MLP-0 far below every deeper MLP (gap > 0.05 HR)", row))
    rows.append(("deeper is better: MLP-4 > MLP-1",
                 {f: cell(f, by.get(("MLP-4", f)), by.get(("MLP-1", f)), "MLP-1") for f in factors}))
    for name in ("NeuMF", "NeuMF-pre"):
        for other in ("GMF", f"MLP-{NEUMF_LAYERS}"):
            rows.append((f"{name} > {other}",
                         {f: cell(f, by.get((name, f)), by.get((other, f)), other) for f in factors}))
    rows.append(("pretraining helps: NeuMF-pre > NeuMF",
                 {f: cell(f, by.get(("NeuMF-pre", f)), by.get(("NeuMF", f)), "NeuMF") for f in factors}))
    lines = ["| finding (test HR@10) | " + " | ".join(f"F={f}" for f in factors) + " |",
             "|---|" + "---|" * len(factors)]
    for label, cells in rows:
        lines.append(f"| {label} | " + " | ".join(cells.get(f, "n/a") for f in factors) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ml-100k" / "u.data")
    p.add_argument("--factors", default="8,16,32,64", help="comma-separated predictive factors")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs per model")
    p.add_argument("--patience", type=int, default=3, help="epochs without a better val HR@10 before stopping")
    p.add_argument("--sgd-lrs", default="0.05,0.5", help="SGD learning rates tried for NeuMF-pre")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    args = p.parse_args(argv)
    args.factors = [int(x) for x in args.factors.split(",") if x]
    args.sgd_lrs = [float(x) for x in args.sgd_lrs.split(",") if x]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data, val, test = load(args.data, args.seed, 99)
    results: List[Result] = []
    for f in args.factors:
        results.extend(run_factor(f, data, val, test, args))
        if args.json is not None:
            args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    wall = time.perf_counter() - t0
    print(f"NCF on ML-100K: leave-latest-out, 1 + 99 negatives, {test.users.numel()} test users; "
          f"max {args.epochs} epochs, patience {args.patience}; torch {torch.__version__}, "
          f"{args.threads} thread(s); total wall time {wall / 60:.1f} min\n")
    print(results_table(results))
    print()
    print(findings_table(results, test.users.numel()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
