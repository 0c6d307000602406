"""Benchmark: full-ranking evaluation of all Gowalla test users vs the bare matmul + top-K floor.

Usage::

    python benchmarks/bench_eval.py [--data-dir ../shared/data/gowalla] [--threads 2] [--repeats 5]

Both variants score the same chunks of test users (``max_chunk_bytes // (4 * I)`` users per
chunk) against all items with random seeded 64-dim embeddings:

* ``floor``: ``user_emb[chunk] @ item_emb.T`` then ``torch.topk(.., 20)``, nothing else;
* ``graphcf``: :func:`graphcf.evaluate.full_ranking` (training items masked to -inf, hit
  matrix, all metrics at K=20).

Time: median (and min) over ``--repeats`` runs in this process, variants alternated after
one warm-up run each. Extra peak memory: each variant runs once more in a fresh
subprocess that loads the data, resets the kernel's peak-RSS counter (``VmHWM``, via
``/proc/self/clear_refs``), then runs the evaluation; reported is peak RSS during the run
minus RSS just before it, i.e. what the evaluation itself adds on top of the loaded data
and embeddings (falls back to ``ru_maxrss`` growth where ``clear_refs`` is unavailable).

Prints one Markdown table (with a header line) to stdout; logs go to stderr.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch_geometric  # noqa: E402

from graphcf.data import Interactions, num_users_items, split_edge_index, to_heterodata  # noqa: E402
from graphcf.evaluate import full_ranking  # noqa: E402
from graphcf.nn import DotScorer  # noqa: E402

logger = logging.getLogger("bench_eval")


# ------------------------------------------------------------------ data


def read_lightgcn(path: Path) -> Tuple[np.ndarray, np.ndarray]:
    """``USER ITEM ITEM ...`` lines -> (user, item) int64 arrays."""
    users, items = [], []
    with open(path) as f:
        for line in f:
            toks = line.split()
            if len(toks) < 2:
                continue
            row = np.asarray(toks, dtype=np.int64)
            users.append(np.full(len(row) - 1, row[0], dtype=np.int64))
            items.append(row[1:])
    return np.concatenate(users), np.concatenate(items)


def build_numpy(data_dir: Path):
    tr_u, tr_i = read_lightgcn(data_dir / "train.txt")
    te_u, te_i = read_lightgcn(data_dir / "test.txt")
    nu = int(max(tr_u.max(), te_u.max())) + 1
    ni = int(max(tr_i.max(), te_i.max())) + 1
    splits = {
        "train": Interactions(torch.from_numpy(tr_u), torch.from_numpy(tr_i), nu, ni),
        "test": Interactions(torch.from_numpy(te_u), torch.from_numpy(te_i), nu, ni),
    }
    return to_heterodata(splits)


def load(data_dir: Path, dim: int, seed: int, parser: str = "auto"):
    """Graph + seeded random embeddings; returns ``(data, user_emb, item_emb, parser_used)``."""
    data, used = None, "numpy"
    if parser in ("auto", "graphcf"):
        try:
            from graphcf.data.loaders import load_lightgcn_dir

            data, _ = load_lightgcn_dir(data_dir)
            used = "graphcf.data.loaders.load_lightgcn_dir"
        except Exception as exc:  # the loader is optional here; fall back to the local parser
            if parser == "graphcf":
                raise
            logger.warning("load_lightgcn_dir unavailable (%s: %s); using the numpy parser",
                           type(exc).__name__, exc)
    if data is None:
        data = build_numpy(data_dir)
    nu, ni = num_users_items(data)
    g = torch.Generator().manual_seed(seed)
    user_emb = torch.randn(nu, dim, generator=g) * 0.1
    item_emb = torch.randn(ni, dim, generator=g) * 0.1
    return data, user_emb, item_emb, used


def resolve_data_dir(arg: str) -> Path:
    """A relative ``--data-dir`` is taken from the current directory, else from the repo root."""
    p = Path(arg)
    if p.is_absolute() or (p / "train.txt").exists():
        return p.resolve()
    return (REPO / p).resolve()


# ------------------------------------------------------------------ variants


def chunk_rows(num_items: int, max_chunk_bytes: int) -> int:
    return max(1, max_chunk_bytes // (4 * num_items))


def run_floor(data, user_emb, item_emb, k: int, max_chunk_bytes: int) -> Dict[str, float]:
    eval_users = torch.unique(split_edge_index(data, "test")[0])
    rows = chunk_rows(item_emb.shape[0], max_chunk_bytes)
    item_t = item_emb.t()
    for s in range(0, eval_users.numel(), rows):
        torch.topk(user_emb[eval_users[s : s + rows]] @ item_t, k, dim=1)
    return {}


def run_graphcf(data, user_emb, item_emb, k: int, max_chunk_bytes: int) -> Dict[str, float]:
    return full_ranking(user_emb, item_emb, DotScorer(), data, split="test", ks=(k,),
                        max_chunk_bytes=max_chunk_bytes)


VARIANTS = {"floor": run_floor, "graphcf": run_graphcf}


# ------------------------------------------------------------------ memory (child process)


def _proc_status() -> Dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def child(args) -> None:
    torch.set_num_threads(args.threads)
    data, user_emb, item_emb, _ = load(resolve_data_dir(args.data_dir), args.dim, args.seed, args.parser)
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak-RSS high-water mark to the current RSS
        before = _proc_status()["VmRSS"]
        method = "VmHWM after clear_refs"
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        method = "ru_maxrss growth"
    VARIANTS[args._child](data, user_emb, item_emb, args.k, args.max_chunk_bytes)
    if method.startswith("VmHWM"):
        peak = _proc_status()["VmHWM"]
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"extra_bytes": peak - before, "base_bytes": before, "method": method}))


def measure_memory(args, variant: str) -> Dict[str, object]:
    cmd = [sys.executable, __file__, "--_child", variant, "--data-dir", str(args.data_dir),
           "--threads", str(args.threads), "--k", str(args.k), "--dim", str(args.dim),
           "--seed", str(args.seed), "--max-chunk-bytes", str(args.max_chunk_bytes),
           "--parser", args.parser]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default="../shared/data/gowalla",
                   help="LightGCN-format directory; relative paths: from the cwd, else the repo root")
    p.add_argument("--parser", choices=["auto", "graphcf", "numpy"], default="auto",
                   help="auto: graphcf.data.loaders.load_lightgcn_dir if importable, else the numpy parser")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-chunk-bytes", type=int, default=256 * 2**20)
    p.add_argument("--no-memory", action="store_true", help="skip the subprocess memory runs")
    p.add_argument("--_child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args._child:
        logging.getLogger().setLevel(logging.WARNING)
        child(args)
        return

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir)
    data, user_emb, item_emb, parser = load(data_dir, args.dim, args.seed, args.parser)
    nu, ni = user_emb.shape[0], item_emb.shape[0]
    n_train = split_edge_index(data, "train").shape[1]
    n_test_users = int(torch.unique(split_edge_index(data, "test")[0]).numel())
    logger.info("loaded %s with %s in %.1fs: %d users (%d with test items), %d items, %d train edges",
                data_dir, parser, time.perf_counter() - t0, nu, n_test_users, ni, n_train)

    logging.getLogger("graphcf").setLevel(logging.WARNING)  # keep per-run logs quiet
    times: Dict[str, list] = {v: [] for v in VARIANTS}
    results: Dict[str, Dict[str, float]] = {}
    for v, fn in VARIANTS.items():  # warm-up
        results[v] = fn(data, user_emb, item_emb, args.k, args.max_chunk_bytes)
    for r in range(args.repeats):
        for v, fn in VARIANTS.items():
            t = time.perf_counter()
            fn(data, user_emb, item_emb, args.k, args.max_chunk_bytes)
            times[v].append(time.perf_counter() - t)
        logger.info("repeat %d: %s", r, ", ".join(f"{v}={times[v][-1]:.3f}s" for v in VARIANTS))

    mem: Dict[str, Dict[str, object]] = {}
    if not args.no_memory:
        for v in VARIANTS:
            mem[v] = measure_memory(args, v)
            logger.info("memory %s: %s", v, mem[v])

    floor_med = statistics.median(times["floor"])
    rows = chunk_rows(ni, args.max_chunk_bytes)
    print(f"bench_eval: Gowalla full ranking, {n_test_users} test users x {ni} items, d={args.dim}, "
          f"top-{args.k}, chunks of {rows} users ({args.max_chunk_bytes / 2**20:.0f} MiB scores); "
          f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}, "
          f"threads {torch.get_num_threads()}, repeats {args.repeats}, data read by {parser}")
    print()
    print("| variant | what runs | median s | min s | ratio vs floor | extra peak RSS MiB | recall@20 | ndcg@20 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    what = {"floor": "`user_chunk @ item.T` + `torch.topk`",
            "graphcf": "`full_ranking` (train masked, hits, 7 metrics)"}
    for v in VARIANTS:
        med = statistics.median(times[v])
        m = mem.get(v)
        extra = f"{m['extra_bytes'] / 2**20:.0f}" if m else "n/a"
        res = results[v]
        rec = f"{res[f'recall@{args.k}']:.5f}" if res else "-"
        nd = f"{res[f'ndcg@{args.k}']:.5f}" if res else "-"
        print(f"| {v} | {what[v]} | {med:.3f} | {min(times[v]):.3f} | {med / floor_med:.3f} | {extra} | {rec} | {nd} |")


if __name__ == "__main__":
    main()
