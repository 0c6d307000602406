"""Benchmark: one LightGCN training step on Gowalla with each sparse kernel, side by side.

Usage::

    python benchmarks/bench_conv.py [--data-dir ../shared/data/gowalla] [--threads 2] [--steps 10]

Every variant does the same work as one step of the official LightGCN recipe (He et al. 2020:
64 dims, 3 layers, batch 2048): propagate all embeddings through 3 light convolutions, take the
layer mean, gather the batch's (user, positive, negative) rows, BPR loss + L2 on the batch's
layer-0 rows, backward. Variants:

* ``official-style``: the reference code's computation, re-implemented here: one symmetric
  normalised ``(U+I) x (U+I)`` torch sparse COO matrix, ``torch.sparse.mm`` per layer with
  autograd's own backward, users and items in one table;
* ``pyg-lgconv-edge_index``: PyG's ``LGConv`` (scatter over ``edge_index``, normalisation
  recomputed every call, as in PyG's LightGCN model);
* ``pyg-lgconv-sparsetensor``: PyG's ``LGConv`` on a torch-sparse ``SparseTensor`` adjacency;
* ``graphcf-layers``: :class:`graphcf.nn.encoders.LightGCNEncoder`'s layer-by-layer path
  (``propagate(fused=False)``: bipartite CSR blocks, cached, each layer's backward with the
  precomputed transpose);
* ``graphcf-fused``: the encoder's ``forward`` (all layers one autograd node, Horner
  backward, :func:`graphcf.nn.sparse.layer_sum_propagate`);
* ``graphcf``: what graphcf's trainer runs, ``LightGCNEncoder.embed_rows``: the fused
  propagation with the last layer computed for the batch's rows only.

Seconds per step: median over ``--steps`` steps after one warm-up step, variants interleaved
round-robin so background load hits all of them alike. ``ratio`` is the official-style median
over the variant's median (higher: faster). ``s/epoch at 2048`` multiplies the measured
per-step median by the 396 steps of one Gowalla epoch at batch 2048 (a projection of the
measured step time, not a timed epoch). Prints one Markdown table to stdout.
"""
from __future__ import annotations

import argparse
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphcf.data.loaders import load_lightgcn_dir  # noqa: E402
from graphcf.nn.encoders import LightGCNEncoder  # noqa: E402
from graphcf.typing import INTERACTS, UserItemEmbeddings  # noqa: E402

log = logging.getLogger("bench_conv")
DIM, LAYERS, BATCH = 64, 3, 2048


def official_style(ei: torch.Tensor, nu: int, ni: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The reference code's step: one (U+I)^2 COO matrix and torch.sparse.mm with autograd's backward."""
    row = torch.cat([ei[0], ei[1] + nu])
    col = torch.cat([ei[1] + nu, ei[0]])
    deg = torch.bincount(row, minlength=nu + ni).float()
    val = (deg[row] * deg[col]).rsqrt()
    graph = torch.sparse_coo_tensor(torch.stack([row, col]), val, (nu + ni, nu + ni)).coalesce()
    emb = torch.nn.Parameter(torch.randn(nu + ni, DIM) * 0.1)

    def step(batch: torch.Tensor) -> torch.Tensor:
        x, outs = emb, [emb]
        for _ in range(LAYERS):
            x = torch.sparse.mm(graph, x)
            outs.append(x)
        final = torch.stack(outs, 1).mean(1)
        u, p, n = batch[0], batch[1] + nu, batch[2] + nu
        loss = F.softplus((final[u] * final[n]).sum(1) - (final[u] * final[p]).sum(1)).mean()
        loss = loss + 1e-4 * (emb[u].pow(2).sum() + emb[p].pow(2).sum() + emb[n].pow(2).sum()) / (2 * len(u))
        loss.backward()
        emb.grad = None
        return loss

    return step


def pyg_lgconv(ei: torch.Tensor, nu: int, ni: int, sparse_tensor: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    from torch_geometric.nn import LGConv

    edge_index = torch.cat([torch.stack([ei[0], ei[1] + nu]), torch.stack([ei[1] + nu, ei[0]])], 1)
    adj = edge_index
    if sparse_tensor:
        from torch_sparse import SparseTensor
        adj = SparseTensor(row=edge_index[1], col=edge_index[0], sparse_sizes=(nu + ni, nu + ni))
    convs = [LGConv() for _ in range(LAYERS)]
    emb = torch.nn.Parameter(torch.randn(nu + ni, DIM) * 0.1)

    def step(batch: torch.Tensor) -> torch.Tensor:
        x, out = emb, emb / (LAYERS + 1)
        for conv in convs:
            x = conv(x, adj)
            out = out + x / (LAYERS + 1)
        u, p, n = batch[0], batch[1] + nu, batch[2] + nu
        loss = F.softplus((out[u] * out[n]).sum(1) - (out[u] * out[p]).sum(1)).mean()
        loss = loss + 1e-4 * (emb[u].pow(2).sum() + emb[p].pow(2).sum() + emb[n].pow(2).sum()) / (2 * len(u))
        loss.backward()
        emb.grad = None
        return loss

    return step


def graphcf_step(data, nu: int, ni: int, mode: str = "rows") -> Callable[[torch.Tensor], torch.Tensor]:
    enc = LightGCNEncoder(nu, ni, dim=DIM, num_layers=LAYERS)

    def step(batch: torch.Tensor) -> torch.Tensor:
        if mode == "rows":  # what PairwiseObjective does
            emb = enc.embed_rows(data, batch[0], torch.cat([batch[1], batch[2]]))
            u, p, n = emb.user, emb.item[: len(batch[1])], emb.item[len(batch[1]):]
        else:
            if mode == "fused":
                emb = enc(data)
            else:
                emb = UserItemEmbeddings(*enc.propagate(enc.adjacency(data), enc.user_emb.weight,
                                                        enc.item_emb.weight, fused=False))
            u, p, n = emb.user[batch[0]], emb.item[batch[1]], emb.item[batch[2]]
        loss = F.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
        reg = enc.reg_embeddings(emb, batch[0], batch[1], batch[2])
        loss = loss + 1e-4 * sum(r.pow(2).sum() for r in reg) / (2 * len(batch[0]))
        loss.backward()
        enc.zero_grad(set_to_none=True)
        return loss

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "gowalla"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--variants", nargs="+",
                   default=["official-style", "pyg-lgconv-edge_index", "pyg-lgconv-sparsetensor", "graphcf-layers",
                            "graphcf-fused", "graphcf"])
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, _ = load_lightgcn_dir(args.data_dir)
    ei = data[INTERACTS].edge_index
    nu, ni = int(data["user"].num_nodes), int(data["item"].num_nodes)
    make: Dict[str, Callable[[], Callable[[torch.Tensor], torch.Tensor]]] = {
        "official-style": lambda: official_style(ei, nu, ni),
        "pyg-lgconv-edge_index": lambda: pyg_lgconv(ei, nu, ni, sparse_tensor=False),
        "pyg-lgconv-sparsetensor": lambda: pyg_lgconv(ei, nu, ni, sparse_tensor=True),
        "graphcf-layers": lambda: graphcf_step(data, nu, ni, mode="layers"),
        "graphcf-fused": lambda: graphcf_step(data, nu, ni, mode="fused"),
        "graphcf": lambda: graphcf_step(data, nu, ni, mode="rows"),
    }
    steps = {name: make[name]() for name in args.variants}
    g = torch.Generator().manual_seed(0)

    def batch() -> torch.Tensor:
        idx = torch.randint(0, ei.size(1), (BATCH,), generator=g)
        return torch.stack([ei[0, idx], ei[1, idx], torch.randint(0, ni, (BATCH,), generator=g)])

    times: Dict[str, List[float]] = {name: [] for name in steps}
    for name, fn in steps.items():  # warm-up (builds caches, CSR conversions)
        t0 = time.perf_counter()
        fn(batch())
        log.info("%s warm-up %.3f s", name, time.perf_counter() - t0)
    for _ in range(args.steps):
        for name, fn in steps.items():
            b = batch()
            t0 = time.perf_counter()
            fn(b)
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["official-style"]) if "official-style" in times else math.nan
    epoch_steps = math.ceil(ei.size(1) / BATCH)
    print(f"Gowalla {nu} users x {ni} items, {ei.size(1)} training edges; {DIM} dims, {LAYERS} layers, "
          f"batch {BATCH}; torch {torch.__version__}, {args.threads} threads, {args.steps} steps per variant")
    print()
    print(f"| variant | median s/step | min s/step | ratio vs official-style | s/epoch at {BATCH} ({epoch_steps} steps) |")
    print("|---|---:|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.3f} | {min(ts):.3f} | {ref / med:.2f} | {med * epoch_steps:.0f} |")


if __name__ == "__main__":
    main()
