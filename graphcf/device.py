"""Device selection: ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` / ``mps``, with a clear error for an unavailable one."""
from __future__ import annotations

from typing import Any, Union

import torch

__all__ = ["DEVICE_CHOICES", "resolve_device", "to_device"]

#: the spellings ``TrainConfig.device`` and ``graphcf train --device`` accept (plus ``cuda:N``)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(spec: Union[str, torch.device, None] = "auto") -> torch.device:
    """The :class:`torch.device` that ``spec`` names.

    ``"auto"`` (or ``None``): CUDA when available, else CPU. ``"cuda"`` / ``"cuda:N"`` / ``"mps"`` must
    be available: otherwise ``ValueError`` says so and what is (no silent fall-back to the CPU).
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = "auto" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ValueError(f"device {spec!r} is not a device name; use one of {list(DEVICE_CHOICES)} or cuda:N") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} is not available: this torch ({torch.__version__}) sees no CUDA GPU; "
                             "use device 'cpu' or 'auto'")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device {spec!r} is not available: there are {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {spec!r} is not available (no Apple MPS backend here); use 'cpu' or 'auto'")
        return dev
    raise ValueError(f"device {spec!r} is not supported; use one of {list(DEVICE_CHOICES)} or cuda:N")


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor moved to ``device`` (tensors, tuples / named tuples / lists / dicts of them,
    and objects with a ``.to``); a no-op for objects already there."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.device == device else obj.to(device, non_blocking=True)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(to_device(x, device) for x in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(x, device) for x in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if obj is None or isinstance(obj, (int, float, str, bool)):
        return obj
    if hasattr(obj, "to"):
        return obj.to(device)
    return obj
