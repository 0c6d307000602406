"""Benchmark: EASE (Steck, WWW 2019) with its L2 weight chosen on validation, then tested.

Usage::

    python benchmarks/bench_ease.py --data ../shared/data/gowalla --format lightgcn \\
        [--l2 100 200 500 1000] [--threads 2] [--json out.json] [--paper-recall 0.1765 --paper-ndcg 0.1467]

Protocol (never tuned on test):

* data without a validation split (Gowalla): 10% of each user's training items (seed 0) are carved
  out as validation; EASE is fitted on the rest for every ``--l2``; the best validation Recall@20
  picks lambda; EASE is then refitted on the *whole* train file with it and the test split reported;
* data with its own validation split (citeulike, amazon-beauty): fitted on train for every ``--l2``,
  picked on validation, and the test split of that same fit reported.

Per fit: wall seconds of the closed form (``fit_s``) and of the evaluation, and the process's peak RSS
so far. Prints one Markdown table to stdout (logs to stderr) and, with ``--json``, writes the rows.
Where EASE would not fit in memory the table says so with the figure (the model refuses up front).
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphcf.data.build import has_split  # noqa: E402
from graphcf.data.loaders import load_lightgcn_dir, load_triples_dir  # noqa: E402
from graphcf.data.source import with_validation  # noqa: E402
from graphcf.evaluators import FullRankingEvaluator  # noqa: E402
from graphcf.models import make_model  # noqa: E402

log = logging.getLogger("bench_ease")


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def fit_eval(data, l2: float, splits, dtype: str) -> Dict[str, Any]:  # type: ignore[no-untyped-def]
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    model = make_model("ease", nu, ni, {"l2": l2, "dtype": dtype})
    t0 = time.perf_counter()
    model.fit_closed_form(data)
    fit_s = time.perf_counter() - t0
    ev = FullRankingEvaluator(ks=(20,))
    t0 = time.perf_counter()
    out: Dict[str, Any] = {"l2": l2, "fit_s": fit_s, "peak_rss_gib": _peak_gib()}
    for split in splits:
        m = ev.evaluate(model, data, split)
        out[f"{split}/recall@20"], out[f"{split}/ndcg@20"] = m["recall@20"], m["ndcg@20"]
    out["eval_s"] = time.perf_counter() - t0
    del model
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--format", choices=["lightgcn", "triples"], required=True)
    p.add_argument("--l2", type=float, nargs="+", default=[100.0, 200.0, 500.0, 1000.0])
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--val-ratio", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--paper-recall", type=float)
    p.add_argument("--paper-ndcg", type=float)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    load = load_lightgcn_dir if args.format == "lightgcn" else load_triples_dir
    full, _ = load(args.data)
    own_val = has_split(full, "val")
    tune = full if own_val else with_validation(full, args.val_ratio, seed=args.seed)
    nu, ni = int(full["user"].num_nodes), int(full["item"].num_nodes)
    rows: List[Dict[str, Any]] = []
    try:
        for l2 in args.l2:
            r = fit_eval(tune, l2, ("val", "test") if own_val else ("val",), args.dtype)
            r["run"] = "validation fit"
            rows.append(r)
            log.info("l2=%g: %s", l2, r)
        best = max(rows, key=lambda r: r["val/recall@20"])
        if not own_val:
            final = fit_eval(full, best["l2"], ("test",), args.dtype)
            final["run"] = "refit on full train"
            rows.append(final)
        else:
            final = best
        refused = None
    except MemoryError as e:
        refused, final = str(e), None
    print(f"EASE on {args.data} ({nu} users x {ni} items), dtype={args.dtype}, threads={args.threads}, "
          f"torch={torch.__version__}; lambda chosen on {'its own' if own_val else 'a carved (10%)'} validation split")
    print()
    if refused:
        print(f"Refused up front: {refused}")
        return
    print("| run | l2 | val recall@20 | val ndcg@20 | test recall@20 | test ndcg@20 | paper recall@20 | paper ndcg@20 "
          "| fit s | eval s | peak RSS GiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = lambda k: f"{r[k]:.4f}" if k in r else "-"  # noqa: E731
        chosen = " (chosen)" if r is best else ""
        paper = (f"{args.paper_recall or '-'} | {args.paper_ndcg or '-'}" if "test/recall@20" in r else "- | -")
        print(f"| {r['run']}{chosen} | {r['l2']:g} | {f('val/recall@20')} | {f('val/ndcg@20')} | "
              f"{f('test/recall@20')} | {f('test/ndcg@20')} | {paper} | {r['fit_s']:.1f} | {r['eval_s']:.1f} | "
              f"{r['peak_rss_gib']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"data": args.data, "users": nu, "items": ni, "dtype": args.dtype,
                                               "threads": args.threads, "rows": rows,
                                               "chosen_l2": best["l2"], "test": {k: final[k] for k in final
                                                                                 if k.startswith("test/")},
                                               "paper": {"recall@20": args.paper_recall,
                                                         "ndcg@20": args.paper_ndcg}}, indent=2))


if __name__ == "__main__":
    main()
