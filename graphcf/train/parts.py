"""The trainer's parts, each small and with its own state (saved in the checkpoint): early stopping,
the learning-rate schedule, the time budget and the checkpointer."""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ["EarlyStopping", "LRSchedule", "TimeBudget", "Checkpointer", "atomic_save", "lr_decay_epochs"]


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then an atomic rename: a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def lr_decay_epochs(history: Sequence[Dict[str, Any]]) -> Tuple[int, ...]:
    """Epochs after which the logged learning rate dropped (replay a run's schedule as ``lr_milestones``)."""
    out = []
    for prev, cur in zip(history, history[1:]):
        if "lr" in prev and "lr" in cur and cur["lr"] < prev["lr"]:
            out.append(int(prev["epoch"]))
    return tuple(out)


class EarlyStopping:
    """Tracks the best validation score and stops after ``patience`` validations without improvement
    (``patience=0``: never stops)."""

    def __init__(self, patience: int) -> None:
        self.patience = int(patience)
        self.best_score, self.best_epoch, self.bad_evals = -math.inf, 0, 0

    def update(self, score: float, epoch: int) -> bool:
        """Record a validation; ``True`` when it is a new best."""
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_evals = float(score), int(epoch), 0
            return True
        self.bad_evals += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience > 0 and self.bad_evals >= self.patience

    def restart_patience(self) -> None:
        self.bad_evals = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "bad_evals": self.bad_evals}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.best_score, self.best_epoch = float(state["best_score"]), int(state["best_epoch"])
        self.bad_evals = int(state["bad_evals"])


class LRSchedule:
    """Step decays after ``milestones`` and reduce-on-plateau (``plateau`` validations without
    improvement), both by ``gamma``: epoch ``e`` trains with ``lr * scale * gamma ** #{m < e}``."""

    def __init__(self, lr: float, milestones: Sequence[int] = (), plateau: int = 0, gamma: float = 0.1) -> None:
        self.lr, self.milestones, self.plateau, self.gamma = float(lr), tuple(milestones), int(plateau), float(gamma)
        self.plateau_evals, self.scale = 0, 1.0

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.scale * self.gamma ** sum(m < epoch for m in self.milestones)

    def on_validation(self, improved: bool) -> bool:
        """Record a validation; ``True`` when the plateau rule just decayed the learning rate."""
        if improved:
            self.plateau_evals = 0
            return False
        self.plateau_evals += 1
        if self.plateau > 0 and self.plateau_evals >= self.plateau:
            self.scale *= self.gamma
            self.plateau_evals = 0
            return True
        return False

    def restart_patience(self) -> None:
        self.plateau_evals = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"plateau_evals": self.plateau_evals, "plateau_scale": self.scale}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.plateau_evals, self.scale = int(state["plateau_evals"]), float(state["plateau_scale"])


class TimeBudget:
    """Stops a run once its cumulative training seconds (``train_s`` of every epoch, across resumes)
    reach ``seconds`` (0: no budget). Its state is the history itself."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)

    def spent(self, history: Sequence[Dict[str, Any]]) -> bool:
        return self.seconds > 0 and sum(float(r.get("train_s", 0.0)) for r in history) >= self.seconds


class Checkpointer:
    """Atomic checkpoints, the per-epoch log and the best model of a run directory.

    Files: ``checkpoint.pt`` (the latest epoch's full state), ``metrics.jsonl`` (one line per epoch),
    ``best.pt`` (the restored model's state), and with ``keep_every`` a copy of every N-th checkpoint
    as ``checkpoints/epoch_NNNN.pt``.
    """

    def __init__(self, out_dir: Optional[Path], keep_every: int = 0) -> None:
        if keep_every < 0 or (keep_every and out_dir is None):
            raise ValueError(f"Trainer.fit: keep_every must be >= 0 and needs an out_dir, got {keep_every} "
                             f"with out_dir={out_dir!r}")
        self.out = Path(out_dir) if out_dir is not None else None
        self.keep_every = int(keep_every)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Optional[Path]:
        return self.out / "checkpoint.pt" if self.out is not None else None

    def can_resume(self) -> bool:
        return self.path is not None and self.path.exists()

    @staticmethod
    def load(path: Path) -> Dict[str, Any]:
        if not Path(path).exists():
            raise FileNotFoundError(f"Trainer: checkpoint {path} does not exist")
        return torch.load(path, map_location="cpu", weights_only=False)

    def save(self, state: Dict[str, Any], epoch: int) -> None:
        if self.out is None:
            return
        atomic_save(state, self.path)  # type: ignore[arg-type]
        if self.keep_every and epoch % self.keep_every == 0:
            kept = self.out / "checkpoints" / f"epoch_{epoch:04d}.pt"
            kept.parent.mkdir(exist_ok=True)
            tmp = kept.with_name(kept.name + ".tmp")
            shutil.copyfile(self.path, tmp)  # type: ignore[arg-type]
            os.replace(tmp, kept)

    def append_record(self, rec: Dict[str, Any]) -> None:
        if self.out is not None:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")

    def write_history(self, history: List[Dict[str, Any]]) -> None:
        if self.out is None:
            return
        path = self.out / "metrics.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in history:
                f.write(json.dumps(rec) + "\n")
        os.replace(tmp, path)

    def save_best(self, state: Dict[str, Any]) -> None:
        if self.out is not None:
            atomic_save({"model": state}, self.out / "best.pt")
