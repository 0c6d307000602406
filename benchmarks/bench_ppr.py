"""Benchmark: PinSAGE PPR hard negatives (``PPRHardNegativeSampler``) for all Gowalla users.

Usage::

    python benchmarks/bench_ppr.py [--data ../shared/data/gowalla] [--threads 2] [--num-iters 20]
                                   [--chunk-size 1024] [--check-users 200] [--compare-iters 5,10]

Builds :class:`graphcf.samplers.ppr.PPRHardNegativeSampler` on the training graph for every user
(PPR from each user, training positives excluded, ranks ``lo..hi-1`` cached) and reports:

* seconds: the whole build (wall, and the process's CPU seconds, user + sys: on a machine shared
  with other jobs, CPU s / threads estimates the wall time on idle cores), and its two phases (the sparse PPR products; masking + ranking with
  ``torch.topk``), wall time as measured by the sampler;
* peak RSS of the process (``resource.getrusage``; it includes the loaded data set) and the RSS
  just before the build;
* convergence: for ``--check-users`` random users (seeded), the top-100 and the band (ranks
  ``lo..hi-1``) of the non-positive ranking at ``num_iters`` compared with ``--ref-iters``
  (100: converged to float32 precision for ``alpha = 0.15``, whose truncated mass is
  ``beta^101 / (1 - beta)`` = 1e-14) as mean set overlaps; the same for each ``--compare-iters``
  (convergence only, no full build). The check also asserts that the sampler's cached bands of
  those users are exactly the recomputed ones.

Goal (the issue): <= 120 s for all Gowalla users on 2 cores, top-100 overlap >= 0.95. The
machine's load average is printed with the table: other jobs sharing the cores slow every phase.

Prints one Markdown table (with a header line) to stdout; logs go to stderr.
"""
from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphcf.data.loaders import load_lightgcn_dir  # noqa: E402
from graphcf.samplers.ppr import (  # noqa: E402
    PPRHardNegativeSampler,
    _ranked_nonpositives,
    _tie_break,
    _walk,
)
from graphcf.typing import INTERACTS  # noqa: E402

logger = logging.getLogger("bench_ppr")


def resolve_data_dir(arg: str) -> Path:
    """A relative ``--data`` is taken from the current directory, else from the repo root."""
    p = Path(arg)
    if p.is_absolute() or (p / "train.txt").exists():
        return p.resolve()
    return (REPO / p).resolve()


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def overlap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of ``|set(a[r]) & set(b[r])| / len(b[r])``."""
    return sum(len(set(x.tolist()) & set(y.tolist())) / len(y) for x, y in zip(a, b)) / max(len(b), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="../shared/data/gowalla",
                   help="LightGCN-format directory; relative paths: from the cwd, else the repo root")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--num-iters", type=int, default=20)
    p.add_argument("--alpha", type=float, default=0.15)
    p.add_argument("--chunk-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-users", type=int, default=200, help="users of the convergence check")
    p.add_argument("--ref-iters", type=int, default=100, help="iterations of the converged reference")
    p.add_argument("--compare-iters", default="5,10",
                   help="comma-separated extra num_iters for the convergence check only ('' for none)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    data_dir = resolve_data_dir(args.data)
    data, _ = load_lightgcn_dir(data_dir)
    ei = data[INTERACTS].edge_index
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    logger.info("loaded %s in %.1fs: %d users, %d items, %d train edges", data_dir, time.perf_counter() - t0,
                nu, ni, ei.shape[1])

    load_before = os.getloadavg()
    rss_before = rss_mib()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    sampler = PPRHardNegativeSampler(ei, nu, ni, alpha=args.alpha, num_iters=args.num_iters,
                                     chunk_size=args.chunk_size, seed=args.seed, progress=args.progress)
    total = time.perf_counter() - t
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    peak = peak_rss_mib()
    load_after = os.getloadavg()
    lo, hi = sampler.band
    logger.info("built in %.1fs, %.1f CPU s (%s); peak RSS %.0f MiB (%.0f before the build)", total, cpu_s,
                {k: round(v, 1) for k, v in sampler.timings.items()}, peak, rss_before)

    # convergence: same tie-break permutation as the sampler, positives excluded
    walk = _walk(ei, nu, ni, "bench_ppr")
    prio = _tie_break(ni, args.seed)
    users = torch.randperm(nu, generator=torch.Generator().manual_seed(args.seed + 1))[: args.check_users]
    t = time.perf_counter()
    ref = _ranked_nonpositives(walk, users, hi, args.alpha, args.ref_iters, prio)
    logger.info("reference ranking (%d iterations, %d users) in %.1fs", args.ref_iters, len(users),
                time.perf_counter() - t)
    iters: List[int] = [args.num_iters] + [int(x) for x in args.compare_iters.split(",") if x.strip()]
    conv: Dict[int, tuple] = {}
    for n in dict.fromkeys(iters):
        got = _ranked_nonpositives(walk, users, hi, args.alpha, n, prio)
        conv[n] = (overlap(got[:, :100], ref[:, :100]), overlap(got[:, lo:hi], ref[:, lo:hi]))
        logger.info("num_iters=%d: top-100 overlap %.4f, band overlap %.4f", n, *conv[n])
        if n == args.num_iters:
            cached = sampler.band_items[users].long()
            full = sampler.band_len[users] == hi - lo
            assert torch.equal(cached[full], got[full][:, lo:hi]), "sampler bands differ from the recomputed ranking"

    tm = sampler.timings
    print(f"bench_ppr: PPRHardNegativeSampler on {data_dir.name}, all {nu} users x {ni} items, {ei.shape[1]} train edges, "
          f"alpha {args.alpha}, band {sampler.band}, seed {args.seed}; torch {torch.__version__}, "
          f"threads {args.threads}; load average (1/5/15 min) {'/'.join(f'{x:.2f}' for x in load_before)} before, "
          f"{'/'.join(f'{x:.2f}' for x in load_after)} after the build; convergence on {len(users)} random users "
          f"vs num_iters={args.ref_iters}")
    print()
    print("| num_iters | built | total s | CPU s | PPR products s | ranking s | peak RSS MiB (before build) | band | chunk_size "
          "| top-100 overlap | band overlap |")
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for n in dict.fromkeys(iters):
        top, band = conv[n]
        if n == args.num_iters:
            print(f"| {n} | all users | {total:.1f} | {cpu_s:.1f} | {tm['ppr']:.1f} | {tm['rank']:.1f} | {peak:.0f} ({rss_before:.0f}) "
                  f"| {lo}..{hi - 1} | {args.chunk_size} | {top:.4f} | {band:.4f} |")
        else:
            print(f"| {n} | convergence only | - | - | - | - | - | {lo}..{hi - 1} | - | {top:.4f} | {band:.4f} |")


if __name__ == "__main__":
    main()
