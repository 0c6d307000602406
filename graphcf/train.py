"""The reference training loop: mini-batch BPR over training edges, validation,
early stopping, best-checkpoint restore, atomic checkpoints and resume."""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import has_split
from graphcf.evaluate import full_ranking
from graphcf.losses import LOSSES, PAIR_LOSSES
from graphcf.objectives import (EASY_SAMPLERS, MultinomialObjective, NeighborPairwiseObjective, Objective,
                                PairwiseObjective, PointwiseObjective)
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import DotScorer, Scorer

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


class ModelFitError(RuntimeError):
    """Raised when training diverges (NaN or inf loss)."""


@dataclass
class TrainConfig:
    """Hyperparameters of :class:`Trainer`; keys map one to one onto the YAML ``train:`` section.

    Args:
        epochs: maximum number of epochs (one pass over the training edges each).
        batch_size: training edges per mini-batch.
        lr: Adam learning rate.
        reg: weight of the L2 penalty :func:`graphcf.losses.l2_reg` on the batch embeddings.
        num_negatives: uniform negatives per positive (BPR pairs each with its positive).
        eval_every: validate every this many epochs (0: never; test only at the end).
        patience: stop after this many validations without improvement (0: never stop early).
        metric: the validation metric to maximise, e.g. ``"recall@20"``.
        ks: cut-offs evaluated in one pass.
        seed: seed of the training generator (batch order, negatives).
        loss: the objective: ``"bpr"`` (pairwise, :class:`~graphcf.objectives.PairwiseObjective`),
            ``"margin"`` (pairwise, PinSAGE's max-margin loss with ``margin``), ``"softmax"``
            (pairwise, sampled softmax with ``temperature``), ``"bce"`` (NCF pointwise log loss
            with ``num_negatives`` sampled negatives per positive each epoch) or
            ``"multinomial"`` (Mult-VAE/DAE user rows).
        sampler: easy negatives of the pairwise losses: ``"uniform"``, ``"popularity"`` or
            ``"shared"`` (``num_negatives`` uniform items shared by the whole mini-batch).
        hard_negatives: personalised-PageRank hard negatives per positive, added to the easy
            ones (pairwise losses; :class:`~graphcf.samplers.ppr.PPRHardNegativeSampler`); with
            ``curriculum`` the cap of the schedule.
        curriculum: PinSAGE's curriculum: epoch ``n`` uses ``min(hard_negatives, (n - 1) //
            curriculum_every)`` hard negatives per positive.
        curriculum_every: epochs per added hard negative.
        ppr_band: ``(lo, hi)`` PPR ranks the hard negatives come from (``()``: scaled to the
            catalogue, ``(2000, 5000)`` for 40k items or more).
        ppr_alpha: restart probability of the personalised PageRank.
        ppr_iters: power iterations of the personalised PageRank (10: top-100 overlap 0.99 and
            band overlap 0.975 with the converged ranking on Gowalla, at half the cost of 20).
        ppr_cache: file to load the PPR cache from, or to write it to once computed (``""``: none).
        margin: the margin of ``loss="margin"``.
        temperature: the temperature of ``loss="softmax"``.
        pair_sampling: the (user, positive) pairs of an epoch of the pairwise losses: ``"edge"``
            (every training edge once) or ``"user"`` (``|E|`` draws of a uniform user, then a
            uniform positive of theirs, as the official LightGCN / NGCF code samples).
        reg_negatives: ``"sum"`` (every per-positive negative's L2) or ``"mean"`` (their mean,
            so ``num_negatives`` > 1 keeps the L2 term of the official 1-negative BPR; see
            :class:`~graphcf.objectives.PairwiseObjective`).
        optimizer: ``"adam"`` or ``"sgd"`` (NeuMF fine-tuning after pretraining, as in the paper).
        momentum: SGD momentum.
        anneal_steps, anneal_cap: KL-weight schedule of ``multinomial``:
            ``beta = min(anneal_cap, step / anneal_steps)`` (paper: 200,000 and 0.2, so the cap
            is reached after 40,000 updates).
        precision: ``"fp32"`` or ``"bf16"`` (``torch.autocast`` of the training forward pass
            to bfloat16; about 2.4x faster Mult-VAE steps on an AVX512-BF16 CPU; evaluation
            always runs in float32).
        lr_milestones: epochs after which the learning rate is multiplied by ``lr_gamma``
            (a step schedule: epoch ``e`` trains with
            ``lr * lr_gamma ** #{m in lr_milestones : m < e}``).
        lr_plateau: multiply the learning rate by ``lr_gamma`` after this many validations in
            a row without improvement (0: off; reduce-on-plateau). The epochs after which it
            happened are logged (``"lr"`` in ``metrics.jsonl``), so a retrain without a
            validation split can replay them as ``lr_milestones``.
        lr_gamma: the decay factor of both schedules, in ``(0, 1]``.
        sampling: ``"full"`` (the encoder propagates over the whole training graph for every
            batch) or ``"neighbor"`` (each BPR batch is a ``LinkNeighborLoader`` subgraph around
            its users and items, :class:`~graphcf.objectives.NeighborPairwiseObjective`; graph
            encoders only, ``loss="bpr"``).
        num_neighbors: neighbours sampled per node at each hop in ``"neighbor"`` mode (``-1``:
            all); needs at least one entry per encoder layer.
        time_budget_s: stop after the first epoch at which the run's cumulative training
            seconds (the ``train_s`` of all its epochs, across resumes; evaluation excluded)
            reach this budget (0: no budget). For time-to-accuracy studies ("what does 20
            minutes of training reach?"); the epoch count then depends on the machine.
    """

    epochs: int = 50
    batch_size: int = 2048
    lr: float = 1e-3
    reg: float = 1e-4
    num_negatives: int = 1
    eval_every: int = 1
    patience: int = 10
    metric: str = "recall@20"
    ks: Tuple[int, ...] = (20,)
    seed: int = 0
    loss: str = "bpr"
    sampler: str = "uniform"
    optimizer: str = "adam"
    momentum: float = 0.0
    anneal_steps: int = 200_000
    anneal_cap: float = 0.2
    precision: str = "fp32"
    lr_milestones: Tuple[int, ...] = ()
    lr_plateau: int = 0
    lr_gamma: float = 0.1
    sampling: str = "full"
    num_neighbors: Tuple[int, ...] = (10, 10, 10)
    time_budget_s: float = 0.0
    hard_negatives: int = 0
    curriculum: bool = False
    curriculum_every: int = 1
    ppr_band: Tuple[int, ...] = ()
    ppr_alpha: float = 0.15
    ppr_iters: int = 10
    ppr_cache: str = ""
    margin: float = 0.1
    temperature: float = 1.0
    pair_sampling: str = "edge"
    reg_negatives: str = "sum"

    def __post_init__(self) -> None:
        self.ks = tuple(int(k) for k in self.ks)
        for name in ("epochs", "batch_size", "num_negatives"):
            if getattr(self, name) < 1 and not (name == "epochs" and getattr(self, name) == 0):
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.sampler not in EASY_SAMPLERS:
            raise ValueError(f"TrainConfig.sampler must be one of {EASY_SAMPLERS}, got {self.sampler!r}")
        self.ppr_band = tuple(int(b) for b in self.ppr_band)
        if self.ppr_band and (len(self.ppr_band) != 2 or not 0 <= self.ppr_band[0] < self.ppr_band[1]):
            raise ValueError(f"TrainConfig.ppr_band must be () or (lo, hi) with 0 <= lo < hi, got {self.ppr_band}")
        if self.hard_negatives < 0 or self.curriculum_every < 1:
            raise ValueError(f"TrainConfig.hard_negatives must be >= 0 and curriculum_every >= 1, got "
                             f"{self.hard_negatives}, {self.curriculum_every}")
        if self.curriculum and self.hard_negatives < 1:
            raise ValueError("TrainConfig.curriculum needs hard_negatives >= 1 (the cap of the schedule)")
        if (self.hard_negatives or self.sampler == "shared") and self.loss not in PAIR_LOSSES:
            raise ValueError(f"TrainConfig: hard_negatives / sampler='shared' need a pairwise loss "
                             f"{PAIR_LOSSES}, got loss={self.loss!r}")
        if self.reg_negatives not in ("sum", "mean"):
            raise ValueError(f"TrainConfig.reg_negatives must be 'sum' or 'mean', got {self.reg_negatives!r}")
        if self.pair_sampling not in ("edge", "user"):
            raise ValueError(f"TrainConfig.pair_sampling must be 'edge' or 'user', got {self.pair_sampling!r}")
        full_pairwise = self.loss in PAIR_LOSSES and self.sampling != "neighbor"
        for name, default in (("pair_sampling", "edge"), ("reg_negatives", "sum")):
            if getattr(self, name) != default and not full_pairwise:  # would be silently ignored there
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} applies to the full-graph pairwise "
                                 f"losses only (got loss={self.loss!r}, sampling={self.sampling!r})")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"TrainConfig.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"TrainConfig.optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        self.lr_milestones = tuple(sorted(int(m) for m in self.lr_milestones))
        if any(m < 1 for m in self.lr_milestones):
            raise ValueError(f"TrainConfig.lr_milestones must be epochs >= 1, got {self.lr_milestones}")
        if self.lr_plateau < 0:
            raise ValueError(f"TrainConfig.lr_plateau must be >= 0, got {self.lr_plateau}")
        if not 0.0 < self.lr_gamma <= 1.0:
            raise ValueError(f"TrainConfig.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        self.num_neighbors = tuple(int(k) for k in self.num_neighbors)
        if self.sampling not in ("full", "neighbor"):
            raise ValueError(f"TrainConfig.sampling must be 'full' or 'neighbor', got {self.sampling!r}")
        if self.sampling == "neighbor" and (self.loss != "bpr" or self.sampler != "uniform" or self.hard_negatives):
            raise ValueError("TrainConfig.sampling='neighbor' trains BPR with uniform negatives only "
                             f"(got loss={self.loss!r}, sampler={self.sampler!r}, "
                             f"hard_negatives={self.hard_negatives})")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.time_budget_s < 0:
            raise ValueError(f"TrainConfig.time_budget_s must be >= 0 (0: no budget), got {self.time_budget_s}")
        if "@" in self.metric:
            k = int(self.metric.split("@")[1])
            if k not in self.ks:
                self.ks = tuple(sorted(set(self.ks) | {k}))

    def make_objective(self) -> Objective:
        """The :mod:`graphcf.objectives` object this config describes."""
        if self.loss == "bpr" and self.sampling == "neighbor":
            return NeighborPairwiseObjective(self.num_neighbors, self.num_negatives, self.reg)
        if self.loss in PAIR_LOSSES:
            return PairwiseObjective(self.num_negatives, self.reg, sampler=self.sampler,
                                     hard_negatives=self.hard_negatives, curriculum=self.curriculum,
                                     curriculum_every=self.curriculum_every, ppr_band=self.ppr_band or None,
                                     ppr_alpha=self.ppr_alpha, ppr_iters=self.ppr_iters,
                                     ppr_cache=self.ppr_cache or None, loss=self.loss, margin=self.margin,
                                     temperature=self.temperature, pair_sampling=self.pair_sampling,
                                     reg_negatives=self.reg_negatives)
        if self.loss == "bce":
            return PointwiseObjective(self.num_negatives, self.reg)
        return MultinomialObjective(self.anneal_steps, self.anneal_cap)

    def lr_at(self, epoch: int, plateau_scale: float = 1.0) -> float:
        """The learning rate of epoch ``epoch`` (1-based) under the step schedule, times ``plateau_scale``."""
        return self.lr * plateau_scale * self.lr_gamma ** sum(m < epoch for m in self.lr_milestones)

    def make_optimizer(self, params: List[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        return torch.optim.Adam(params, lr=self.lr, fused=True)  # fused: ~3x faster steps on CPU


@dataclass
class TrainResult:
    best_epoch: int
    val: Dict[str, float]
    test: Dict[str, float]
    history: List[Dict[str, Any]] = field(default_factory=list)


def _snapshot(encoder: Encoder, scorer: Scorer) -> Dict[str, Dict[str, Tensor]]:
    """Detached copies of both modules' states: the best model is encoder *and* scorer
    (NeuMF's fusion layer and Mult-VAE-style heads live in the scorer)."""
    return {name: {k: v.detach().clone() for k, v in m.state_dict().items()}
            for name, m in (("encoder", encoder), ("scorer", scorer))}


def lr_decay_epochs(history: Sequence[Dict[str, Any]]) -> Tuple[int, ...]:
    """Epochs after which the logged learning rate dropped (replay a run's schedule as ``lr_milestones``)."""
    out = []
    for prev, cur in zip(history, history[1:]):
        if "lr" in prev and "lr" in cur and cur["lr"] < prev["lr"]:
            out.append(int(prev["epoch"]))
    return tuple(out)


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``nan`` where unavailable)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Trainer:
    """Trains any :class:`~graphcf.nn.encoders.base.Encoder` with a scorer and an objective (BPR, BCE, multinomial).

    Encoders without trainable parameters (the popularity baseline) are fitted by
    :meth:`Encoder.fit_statistics` and only evaluated.

    With ``out_dir``, every epoch appends a line to ``metrics.jsonl`` (``epoch``, ``loss``,
    ``lr``, ``train_s``: seconds of that epoch's training, ``peak_rss_mb``: the process's peak
    resident memory so far, and on evaluation epochs the metrics plus ``eval_s``) and writes
    ``checkpoint.pt`` atomically (model, optimiser, generator state, early-stopping
    state); a new :meth:`fit` with the same ``out_dir`` resumes from it and ends with
    the same numbers as an uninterrupted run. The best model (on validation) is
    restored at the end and evaluated once on test.
    """

    def __init__(self, config: Optional[TrainConfig] = None, progress: bool = False) -> None:
        self.config = config or TrainConfig()
        self.progress = progress

    # -- evaluation ---------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, encoder: Encoder, scorer: Scorer, data: HeteroData, split: str) -> Dict[str, float]:
        encoder.eval()
        emb = encoder(data)
        return full_ranking(emb.user, emb.item, scorer, data, split=split, ks=self.config.ks)

    # -- training -----------------------------------------------------------
    def fit(
        self,
        encoder: Encoder,
        data: HeteroData,
        scorer: Optional[Scorer] = None,
        out_dir: Optional[PathLike] = None,
        resume: bool = True,
        log_splits: Sequence[str] = (),
        init_from: Optional[PathLike] = None,
        keep_every: int = 0,
    ) -> TrainResult:
        """Train ``encoder`` (and ``scorer``) on ``data``'s training edges.

        Args:
            encoder, data, scorer: the model, the graph, the scorer (default :class:`DotScorer`).
            out_dir: where ``metrics.jsonl``, ``checkpoint.pt`` and ``best.pt`` go (``None``: nowhere).
            resume: continue from ``out_dir/checkpoint.pt`` when it exists.
            log_splits: extra splits evaluated every ``eval_every`` epochs and only *logged*
                (``"test/recall@20"`` ...), never used for model selection. With a fixed seed and
                no schedule, the epoch-``E`` record of a long run equals a fresh run of ``E``
                epochs, so one run gives the "retrain for the chosen epochs" test figure.
            init_from: a ``checkpoint.pt`` of an earlier run to continue *with this config*
                (e.g. a learning-rate schedule added after a plateau): model, optimiser,
                generator, RNG and objective states, the epoch count, the history and the best
                model so far are taken from it; only the patience counter starts again.
                With the same config this is a resume; the run continues exactly as one that
                had this config from the start would, as long as the new config agrees with
                the old one on the epochs already run. Ignored when ``out_dir`` holds a
                checkpoint to resume.
            keep_every: also keep a copy of the checkpoint of every ``keep_every``-th epoch as
                ``out_dir/checkpoints/epoch_NNNN.pt`` (0: only the latest). A later run can then
                continue from any of them with ``init_from`` (e.g. to replay a learning-rate decay
                that a tuning run decided on after this run had passed its epoch).
        """
        cfg = self.config
        if keep_every < 0 or (keep_every and out_dir is None):
            raise ValueError(f"Trainer.fit: keep_every must be >= 0 and needs an out_dir, got {keep_every} "
                             f"with out_dir={out_dir!r}")
        scorer = scorer or DotScorer()
        encoder.fit_statistics(data)
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        params = [p for p in list(encoder.parameters()) + list(scorer.parameters()) if p.requires_grad]
        use_val = has_split(data, "val") and cfg.eval_every > 0
        history: List[Dict[str, Any]] = []
        best_epoch, best_score, bad_evals, start_epoch = 0, -math.inf, 0, 1
        plateau_evals, plateau_scale = 0, 1.0
        best_state = _snapshot(encoder, scorer)
        gen = torch.Generator().manual_seed(cfg.seed)

        if params and cfg.epochs > 0:
            opt = cfg.make_optimizer(params)
            objective = cfg.make_objective()
            ckpt_path = out / "checkpoint.pt" if out is not None else None
            resuming = ckpt_path is not None and resume and ckpt_path.exists()
            if resuming or init_from is not None:
                src = ckpt_path if resuming else Path(init_from)  # type: ignore[arg-type]
                if not src.exists():
                    raise FileNotFoundError(f"Trainer: init_from checkpoint {src} does not exist")
                ck = torch.load(src, weights_only=False)
                # fields added to TrainConfig after the checkpoint was written count with their defaults
                saved_cfg = {**asdict(TrainConfig()), **ck["config"]}
                if resuming and saved_cfg != asdict(cfg):
                    raise ValueError(f"Trainer: {ckpt_path} was written with another config; "
                                     "use a new out_dir, resume=False, or init_from= to continue with a new config")
                encoder.load_state_dict(ck["encoder"])
                scorer.load_state_dict(ck["scorer"])
                opt.load_state_dict(ck["optimizer"])
                gen.set_state(ck["generator"])
                torch.set_rng_state(ck["torch_rng"])  # for modules using the default RNG (dropout)
                objective.load_state_dict(ck["objective"])
                history, best_epoch, best_score = ck["history"], ck["best_epoch"], ck["best_score"]
                bad_evals, best_state, start_epoch = ck["bad_evals"], ck["best_state"], ck["epoch"] + 1
                plateau_evals, plateau_scale = ck.get("plateau_evals", 0), ck.get("plateau_scale", 1.0)
                if not resuming:  # a continuation with a new config: a fresh patience window
                    bad_evals = plateau_evals = 0
                logger.info("%s %s at epoch %d", "resumed from" if resuming else "continuing", src, ck["epoch"])
                if out is not None:  # rewrite the log to match the checkpoint
                    self._write_history(out / "metrics.jsonl", history)
            objective.setup(data)
            stop = bad_evals >= cfg.patience > 0 or self._budget_spent(history)
            for epoch in range(start_epoch, cfg.epochs + 1):
                if stop:
                    break
                lr = cfg.lr_at(epoch, plateau_scale)
                for group in opt.param_groups:
                    group["lr"] = lr
                t0 = time.perf_counter()
                loss = self._train_epoch(encoder, scorer, data, objective, opt, gen, epoch)
                rec: Dict[str, Any] = {"epoch": epoch, "loss": loss, "lr": lr, "train_s": time.perf_counter() - t0,
                                       "peak_rss_mb": _peak_rss_mb()}
                t_eval = time.perf_counter()
                if cfg.eval_every > 0 and epoch % cfg.eval_every == 0:
                    for split in log_splits:
                        logged = self.evaluate(encoder, scorer, data, split)
                        rec.update({f"{split}/{k}": v for k, v in logged.items()})
                if use_val and epoch % cfg.eval_every == 0:
                    val = self.evaluate(encoder, scorer, data, "val")
                    rec.update({f"val/{k}": v for k, v in val.items()})
                    score = val[cfg.metric]
                    if score > best_score:
                        best_score, best_epoch, bad_evals, plateau_evals = score, epoch, 0, 0
                        best_state = _snapshot(encoder, scorer)
                    else:
                        bad_evals += 1
                        plateau_evals += 1
                        if cfg.lr_plateau > 0 and plateau_evals >= cfg.lr_plateau:
                            plateau_scale *= cfg.lr_gamma
                            plateau_evals = 0
                            logger.info("epoch %d: no %s improvement in %d validations, lr -> %.3g", epoch,
                                        cfg.metric, cfg.lr_plateau, cfg.lr_at(epoch + 1, plateau_scale))
                    stop = cfg.patience > 0 and bad_evals >= cfg.patience
                    logger.info("epoch %d loss %.4f val %s %.4f (best %.4f @ %d)", epoch, loss, cfg.metric,
                                score, best_score, best_epoch)
                else:
                    logger.info("epoch %d loss %.4f", epoch, loss)
                if cfg.eval_every > 0 and epoch % cfg.eval_every == 0:
                    rec["eval_s"] = time.perf_counter() - t_eval
                history.append(rec)
                if out is not None:
                    with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
                        f.write(json.dumps(rec) + "\n")
                    _atomic_save({
                        "epoch": epoch, "config": asdict(cfg), "encoder": encoder.state_dict(),
                        "scorer": scorer.state_dict(), "optimizer": opt.state_dict(),
                        "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "objective": objective.state_dict(), "history": history, "best_epoch": best_epoch,
                        "best_score": best_score, "bad_evals": bad_evals, "best_state": best_state,
                        "plateau_evals": plateau_evals, "plateau_scale": plateau_scale,
                    }, ckpt_path)  # type: ignore[arg-type]
                    if keep_every and epoch % keep_every == 0:
                        kept = out / "checkpoints" / f"epoch_{epoch:04d}.pt"
                        kept.parent.mkdir(exist_ok=True)
                        tmp = kept.with_name(kept.name + ".tmp")
                        shutil.copyfile(ckpt_path, tmp)  # type: ignore[arg-type]
                        os.replace(tmp, kept)
                if not stop and self._budget_spent(history):
                    logger.info("epoch %d: time budget of %.0f s of training reached", epoch, cfg.time_budget_s)
                    stop = True
            if not use_val:
                best_epoch = history[-1]["epoch"] if history else 0
                best_state = _snapshot(encoder, scorer)
            encoder.load_state_dict(best_state["encoder"])
            scorer.load_state_dict(best_state["scorer"])
        val_metrics = self.evaluate(encoder, scorer, data, "val") if has_split(data, "val") else {}
        test_metrics = self.evaluate(encoder, scorer, data, "test") if has_split(data, "test") else {}
        if out is not None:
            _atomic_save({"encoder": encoder.state_dict(), "scorer": scorer.state_dict()}, out / "best.pt")
        return TrainResult(best_epoch, val_metrics, test_metrics, history)

    def _budget_spent(self, history: Sequence[Dict[str, Any]]) -> bool:
        """Whether the run's training seconds so far reach ``time_budget_s`` (never if it is 0)."""
        budget = self.config.time_budget_s
        return budget > 0 and sum(float(r.get("train_s", 0.0)) for r in history) >= budget

    def _train_epoch(self, encoder: Encoder, scorer: Scorer, data: HeteroData, objective: Objective,
                     opt: torch.optim.Optimizer, gen: torch.Generator, epoch: int) -> float:
        encoder.train()
        scorer.train()
        total, n = 0.0, 0
        objective.set_epoch(epoch)
        batches: Iterable[Tuple[Tensor, ...]] = objective.batches(data, self.config.batch_size, gen)
        if self.progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"epoch {epoch}", leave=False)
        device_type = next((p.device.type for p in encoder.parameters()), "cpu")
        for batch in batches:
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
                loss = objective.loss(encoder, scorer, data, batch)
            loss = loss.float()
            if not torch.isfinite(loss):
                raise ModelFitError(f"loss is {loss.item()} at epoch {epoch}; lower the learning rate "
                                    f"(lr={self.config.lr}) or check the data")
            opt.zero_grad()
            loss.backward()
            opt.step()
            rows = objective.num_rows(batch)
            total += float(loss.detach()) * rows
            n += rows
        return total / max(n, 1)

    @staticmethod
    def _write_history(path: Path, history: List[Dict[str, Any]]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for rec in history:
                f.write(json.dumps(rec) + "\n")
        os.replace(tmp, path)
