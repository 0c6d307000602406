"""Training curves from a run directory's ``metrics.jsonl`` (``graphcf plot RUN_DIR``)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def read_history(run_dir: PathLike) -> List[Dict[str, Any]]:
    """The per-epoch records of ``run_dir/metrics.jsonl`` (raises ``FileNotFoundError`` naming it)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.jsonl in this run directory (was it written by graphcf train?)")
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}, line {n}: not JSON ({e.msg})") from None
    if not records:
        raise ValueError(f"{path}: no epochs recorded yet")
    return records


def plot_run(run_dir: PathLike, out: Optional[PathLike] = None) -> Path:
    """Draw the loss and every validation metric against the epoch; returns the PNG path
    (default ``run_dir/curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = read_history(run_dir)
    epochs = [r["epoch"] for r in hist]
    val_keys = sorted({k for r in hist for k in r if k.startswith("val/") and not k.endswith(("num_users", "num_skipped"))})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].plot(epochs, [r["loss"] for r in hist], marker=".")
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    for k in val_keys:
        pts = [(r["epoch"], r[k]) for r in hist if k in r]
        axes[1].plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=k[4:])
    axes[1].set(xlabel="epoch", ylabel="metric", title="validation")
    if val_keys:
        axes[1].legend(fontsize=8)
    fig.suptitle(str(Path(run_dir).name))
    fig.tight_layout()
    path = Path(out) if out is not None else Path(run_dir) / "curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
