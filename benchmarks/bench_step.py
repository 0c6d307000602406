"""Benchmark: one BPR training step on Gowalla, unique-row (fused) against gathered objective path.

Usage::

    python benchmarks/bench_step.py [--data-dir ../shared/data/gowalla] [--threads 1] [--steps 12]
        [--models mf lightgcn ngcf] [--batch 8192] [--negatives 8]

Each step is what :class:`graphcf.objectives.PairwiseObjective` does in training (user-pair batch,
``num_negatives`` uniform negatives per positive, BPR, L2 ``reg=1e-4`` with ``reg_negatives="mean"``,
backward, Adam step), with ``fused=True`` (embed the batch's unique users and items once, score
through :func:`graphcf.nn.functional.gather_dot`) and ``fused=False`` (gather ``[B, 1+M, d]`` rows,
the reference path). The two paths alternate step by step in one process on the same batches, so
background load hits both alike. Per path: median wall seconds, median CPU seconds (user + sys of
this process) and median minor page faults per step, after one warm-up step each. Models at their
recipe sizes: MF 64 dims, LightGCN 64 dims x 3 layers, NGCF 64 dims x (64, 64, 64) (256-dimensional
output). Prints one Markdown table to stdout.
"""
from __future__ import annotations

import argparse
import logging
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphcf.data.loaders import load_lightgcn_dir  # noqa: E402
from graphcf.nn.encoders import LightGCNEncoder, MFEncoder, NGCFEncoder  # noqa: E402
from graphcf.nn.scorers import DotScorer  # noqa: E402
from graphcf.objectives import PairwiseObjective  # noqa: E402

log = logging.getLogger("bench_step")


def _usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_minflt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "gowalla"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--negatives", type=int, default=8)
    p.add_argument("--models", nargs="+", default=["mf", "lightgcn", "ngcf"], choices=["mf", "lightgcn", "ngcf"])
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    data, _ = load_lightgcn_dir(args.data_dir)
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    make = {"mf": lambda: MFEncoder(nu, ni, dim=64),
            "lightgcn": lambda: LightGCNEncoder(nu, ni, dim=64, num_layers=3),
            "ngcf": lambda: NGCFEncoder(nu, ni, dim=64, layer_dims=(64, 64, 64))}
    scorer = DotScorer()
    rows = []
    for name in args.models:
        torch.manual_seed(0)
        enc = make[name]()
        opt = torch.optim.Adam(enc.parameters(), lr=1e-3)
        objs = {fused: PairwiseObjective(num_negatives=args.negatives, reg=1e-4, reg_negatives="mean",
                                         pair_sampling="user", fused=fused) for fused in (True, False)}
        for o in objs.values():
            o.setup(data)
        batches = objs[True].batches(data, args.batch, torch.Generator().manual_seed(0))
        stats = {fused: ([], [], []) for fused in objs}
        for k in range(args.steps + 1):
            b = next(batches)
            for fused, obj in objs.items():
                t0, c0, f0 = _usage()
                opt.zero_grad(set_to_none=True)
                obj.loss(enc, scorer, data, b).backward()
                opt.step()
                t1, c1, f1 = _usage()
                if k:  # step 0 is the warm-up (CSR caches, allocator)
                    for lst, v in zip(stats[fused], (t1 - t0, c1 - c0, f1 - f0)):
                        lst.append(v)
        med = {fused: [statistics.median(v) for v in s] for fused, s in stats.items()}
        log.info("%s: fused %s gathered %s", name, med[True], med[False])
        rows.append((name, med[True], med[False]))
    print(f"Gowalla {nu} users x {ni} items; batch {args.batch} x (1+{args.negatives}) items; "
          f"torch {torch.__version__}, {args.threads} threads, {args.steps} steps per path (medians)")
    print()
    print("| model | gathered wall s | fused wall s | wall ratio | gathered cpu s | fused cpu s | cpu ratio "
          "| gathered minor faults | fused minor faults |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, f, g in rows:
        print(f"| {name} | {g[0]:.3f} | {f[0]:.3f} | {g[0] / f[0]:.2f} | {g[1]:.3f} | {f[1]:.3f} | {g[1] / f[1]:.2f} "
              f"| {g[2]:.0f} | {f[2]:.0f} |")


if __name__ == "__main__":
    main()
