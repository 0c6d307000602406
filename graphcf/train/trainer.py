"""The training loop, assembled from parts: objective (batches and loss), optimiser, learning-rate
schedule, early stopping, time budget, checkpointer and an evaluator."""
from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from graphcf.data.build import has_split
from graphcf.device import resolve_device, to_device
from graphcf.model import FactorModel, Recommender, as_model
from graphcf.nn.encoders.base import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.objectives import Objective
from graphcf.train.config import TrainConfig
from graphcf.train.parts import Checkpointer, EarlyStopping, LRSchedule, TimeBudget

logger = logging.getLogger("graphcf.train")

__all__ = ["Trainer", "TrainResult", "ModelFitError"]

PathLike = Union[str, "Path"]


class ModelFitError(RuntimeError):
    """Raised when training diverges (NaN or inf loss)."""


@dataclass
class TrainResult:
    best_epoch: int
    val: Dict[str, float]
    test: Dict[str, float]
    history: List[Dict[str, Any]] = field(default_factory=list)
    fit_seconds: float = 0.0


def _snapshot(model: Recommender) -> Dict[str, Tensor]:
    """Detached copies of the model's state (encoder *and* scorer for a factor model)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``nan`` where unavailable)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def _on(data: HeteroData, device: torch.device) -> HeteroData:
    """``data`` on ``device``: itself when its tensors are there already, else a moved copy (the caller's
    graph stays where it is: the samplers keep using it on the CPU)."""
    ei = data["user", "interacts", "item"].edge_index
    if ei.device == device:
        return data
    return data.clone().to(device)


class Trainer:
    """Fits any :class:`~graphcf.model.Recommender` (or an :class:`~graphcf.nn.encoders.base.Encoder` with a
    scorer, wrapped as a :class:`~graphcf.model.FactorModel`).

    A training-free model (and a factor model without trainable parameters, the popularity baseline)
    is fitted by its closed form and evaluated; the training-only settings it was given are named in
    a warning as ignored. A trained model runs the loop: the objective's batches (sampled on the CPU
    with the seeded generator, moved to ``config.device``), the optimiser, the learning-rate
    schedule, validation with ``evaluator`` every ``eval_every`` epochs, early stopping, the time
    budget, and the best model (on validation) restored and tested once at the end.

    With ``out_dir``, every epoch appends a line to ``metrics.jsonl`` (``epoch``, ``loss``, ``lr``,
    ``train_s``, ``peak_rss_mb`` and on evaluation epochs the metrics plus ``eval_s``) and writes
    ``checkpoint.pt`` atomically; a new :meth:`fit` with the same ``out_dir`` resumes from it and ends
    with the same numbers as an uninterrupted run.

    Args:
        config: the :class:`TrainConfig`.
        progress: tqdm bars over each epoch's batches.
        evaluator: a :class:`graphcf.evaluators.Evaluator` (default: full ranking at ``config.ks``).
    """

    def __init__(self, config: Optional[TrainConfig] = None, progress: bool = False,
                 evaluator: Optional[Any] = None) -> None:
        from graphcf.evaluators import FullRankingEvaluator

        self.config = config or TrainConfig()
        self.progress = progress
        self.evaluator = evaluator if evaluator is not None else FullRankingEvaluator(self.config.ks)

    # -- evaluation ---------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: Union[Recommender, Encoder], data: HeteroData, split: str = "test",
                 scorer: Optional[Scorer] = None) -> Dict[str, float]:
        """``evaluator.evaluate(model, data, split)`` in eval mode (an encoder takes its ``scorer``)."""
        model = as_model(model, scorer)
        model.eval()
        return self.evaluator.evaluate(model, data, split)

    # -- fitting ------------------------------------------------------------
    def fit(
        self,
        model: Union[Recommender, Encoder],
        data: HeteroData,
        scorer: Optional[Scorer] = None,
        out_dir: Optional[PathLike] = None,
        resume: bool = True,
        log_splits: Sequence[str] = (),
        init_from: Optional[PathLike] = None,
        keep_every: int = 0,
        validate_initial: bool = False,
    ) -> TrainResult:
        """Fit ``model`` on ``data``'s training edges; validate on ``val``, report ``test``.

        Args:
            model: a :class:`~graphcf.model.Recommender`, or an encoder (with ``scorer``, default dot).
            data: the graph (it stays where it is; the model sees a copy on ``config.device``).
            out_dir: where ``metrics.jsonl``, ``checkpoint.pt`` and ``best.pt`` go (``None``: nowhere).
            resume: continue from ``out_dir/checkpoint.pt`` when it exists (same config only).
            log_splits: extra splits evaluated every ``eval_every`` epochs and only *logged*
                (``"test/recall@20"`` ...), never used for model selection.
            init_from: a ``checkpoint.pt`` of an earlier run to continue *with this config* (model,
                optimiser, generator, RNG, objective and schedule states, history, best model so far;
                the patience counters start again). Ignored when ``out_dir`` holds a checkpoint.
            keep_every: also keep every ``keep_every``-th epoch's checkpoint (``checkpoints/epoch_NNNN.pt``).
            validate_initial: also validate the model before the first epoch, as a candidate "epoch 0"
                (a pretrained model, e.g. NeuMF fused from GMF and MLP, may already be the best).
        """
        cfg = self.config
        model = as_model(model, scorer)
        model.check_graph(data)
        device = resolve_device(cfg.device)
        model.to(device)
        data_dev = _on(data, device)
        ckpt = Checkpointer(Path(out_dir) if out_dir is not None else None, keep_every)
        use_val = has_split(data, "val") and cfg.eval_every > 0
        t_fit = time.perf_counter()
        model.fit_closed_form(data_dev)
        history: List[Dict[str, Any]] = []
        if model.training_free:
            ignored = cfg.ignored_by_training_free()
            if ignored:
                logger.warning("%s is training-free (fitted in closed form): the training settings %s are ignored",
                               type(model).__name__, ignored)
            fit_s = time.perf_counter() - t_fit
            history.append({"epoch": 0, "fit_s": fit_s, "peak_rss_mb": _peak_rss_mb()})
            ckpt.write_history(history)
            logger.info("%s fitted in closed form in %.1f s", type(model).__name__, fit_s)
            best_epoch = 0
        elif cfg.epochs > 0:
            best_epoch, history = self._train(model, data, data_dev, device, ckpt, resume, log_splits, init_from,
                                              use_val, validate_initial)
        else:
            best_epoch = 0
        fit_seconds = time.perf_counter() - t_fit
        model.eval()
        val_metrics = self.evaluator.evaluate(model, data_dev, "val") if has_split(data, "val") else {}
        test_metrics = self.evaluator.evaluate(model, data_dev, "test") if has_split(data, "test") else {}
        ckpt.save_best(model.state_dict())
        return TrainResult(best_epoch, val_metrics, test_metrics, history, fit_seconds)

    def _train(self, model: Recommender, data: HeteroData, data_dev: HeteroData, device: torch.device,
               ckpt: Checkpointer, resume: bool, log_splits: Sequence[str], init_from: Optional[PathLike],
               use_val: bool, validate_initial: bool = False) -> Tuple[int, List[Dict[str, Any]]]:
        cfg = self.config
        if not isinstance(model, FactorModel):
            raise TypeError(f"Trainer: {type(model).__name__} has trainable parameters but is not a FactorModel "
                            "(an encoder and a scorer); the objectives train encoders")
        params = [p for p in model.parameters() if p.requires_grad]
        history: List[Dict[str, Any]] = []
        stopper = EarlyStopping(cfg.patience)
        schedule = LRSchedule(cfg.lr, cfg.lr_milestones, cfg.lr_plateau, cfg.lr_gamma)
        budget = TimeBudget(cfg.time_budget_s)
        best_state = _snapshot(model)
        start_epoch = 1
        gen = torch.Generator().manual_seed(cfg.seed)
        opt = cfg.make_optimizer(params)
        objective = cfg.make_objective()
        objective.check_encoder(model.encoder)
        resuming = resume and ckpt.can_resume()
        if resuming or init_from is not None:
            src = ckpt.path if resuming else Path(init_from)  # type: ignore[arg-type]
            ck = Checkpointer.load(src)  # type: ignore[arg-type]
            if "model" not in ck:
                raise ValueError(f"Trainer: {src} is a checkpoint of an older graphcf layout; start a new run")
            if resuming and _saved_config(ck["config"]) != _config_record(cfg):
                raise ValueError(f"Trainer: {src} was written with another config; use a new out_dir, "
                                 "resume=False, or init_from= to continue with a new config")
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            gen.set_state(ck["generator"])
            torch.set_rng_state(ck["torch_rng"])  # for modules using the default RNG (dropout)
            if device.type == "cuda" and ck.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ck["cuda_rng"], device)
            objective.load_state_dict(ck["objective"])
            stopper.load_state_dict(ck["early_stopping"])
            schedule.load_state_dict(ck["lr_schedule"])
            history, best_state, start_epoch = ck["history"], ck["best_state"], ck["epoch"] + 1
            if not resuming:  # a continuation with a new config: a fresh patience window
                stopper.restart_patience()
                schedule.restart_patience()
            logger.info("%s %s at epoch %d", "resumed from" if resuming else "continuing", src, ck["epoch"])
            ckpt.write_history(history)  # rewrite the log to match the checkpoint
        objective.setup(data)
        if validate_initial and use_val and start_epoch == 1 and not history:
            model.eval()
            val = self.evaluator.evaluate(model, data_dev, "val")
            stopper.update(val[cfg.metric], 0)
            best_state = _snapshot(model)
            history.append({"epoch": 0, **{f"val/{k}": v for k, v in val.items()}})
            ckpt.append_record(history[-1])
            logger.info("epoch 0 (before training) val %s %.4f", cfg.metric, val[cfg.metric])
        stop = stopper.stop or budget.spent(history)
        for epoch in range(start_epoch, cfg.epochs + 1):
            if stop:
                break
            lr = schedule.lr_at(epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            loss = self._train_epoch(model, data_dev, objective, opt, gen, epoch)
            rec: Dict[str, Any] = {"epoch": epoch, "loss": loss, "lr": lr, "train_s": time.perf_counter() - t0,
                                   "peak_rss_mb": _peak_rss_mb()}
            t_eval = time.perf_counter()
            evaluating = cfg.eval_every > 0 and epoch % cfg.eval_every == 0
            if evaluating:
                model.eval()
                for split in log_splits:
                    rec.update({f"{split}/{k}": v for k, v in self.evaluator.evaluate(model, data_dev, split).items()})
            if use_val and evaluating:
                val = self.evaluator.evaluate(model, data_dev, "val")
                rec.update({f"val/{k}": v for k, v in val.items()})
                if cfg.metric not in val:
                    raise ValueError(f"train.metric {cfg.metric!r} is not computed by {type(self.evaluator).__name__}; "
                                     f"it gives {sorted(k for k in val if '@' in k)}")
                score = val[cfg.metric]
                improved = stopper.update(score, epoch)
                if improved:
                    best_state = _snapshot(model)
                if schedule.on_validation(improved):
                    logger.info("epoch %d: no %s improvement in %d validations, lr -> %.3g", epoch,
                                cfg.metric, cfg.lr_plateau, schedule.lr_at(epoch + 1))
                stop = stopper.stop
                logger.info("epoch %d loss %.4f val %s %.4f (best %.4f @ %d)", epoch, loss, cfg.metric,
                            score, stopper.best_score, stopper.best_epoch)
            else:
                logger.info("epoch %d loss %.4f", epoch, loss)
            if evaluating:
                rec["eval_s"] = time.perf_counter() - t_eval
            history.append(rec)
            ckpt.append_record(rec)
            if ckpt.out is not None:
                ckpt.save({
                    "epoch": epoch, "config": _config_record(cfg), "model": model.state_dict(),
                    "optimizer": opt.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "objective": objective.state_dict(), "history": history, "best_state": best_state,
                    "early_stopping": stopper.state_dict(), "lr_schedule": schedule.state_dict(),
                }, epoch)
            if not stop and budget.spent(history):
                logger.info("epoch %d: time budget of %.0f s of training reached", epoch, cfg.time_budget_s)
                stop = True
        best_epoch = stopper.best_epoch
        if not use_val:
            best_epoch = history[-1]["epoch"] if history else 0
            best_state = _snapshot(model)
        model.load_state_dict(best_state)
        return best_epoch, history

    def _train_epoch(self, model: FactorModel, data: HeteroData, objective: Objective, opt: torch.optim.Optimizer,
                     gen: torch.Generator, epoch: int) -> float:
        model.train()
        encoder, scorer = model.encoder, model.scorer
        total, n = 0.0, 0
        objective.set_epoch(epoch)
        batches: Iterable[Tuple[Tensor, ...]] = objective.batches(data, self.config.batch_size, gen)
        if self.progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc=f"epoch {epoch}", leave=False)
        device = model.device
        move = device.type != "cpu"
        for batch in batches:
            if move:
                batch = to_device(batch, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16"):
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


def _config_record(cfg: TrainConfig) -> Dict[str, Any]:
    """The config as stored in a checkpoint (compared on resume); the device is where, not what, so it is left out."""
    rec = dataclasses.asdict(cfg)
    rec.pop("device", None)
    return rec


def _saved_config(saved: Dict[str, Any]) -> Dict[str, Any]:
    """A checkpoint's config record with the fields added to graphcf after it was written at their defaults."""
    try:
        defaults = _config_record(TrainConfig(loss=saved.get("loss", "bpr")))
    except ValueError:
        return saved
    out = {**defaults, **saved}
    if isinstance(saved.get("objective"), dict):
        out["objective"] = {**defaults["objective"], **saved["objective"]}
    return out
