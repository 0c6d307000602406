"""YAML run configs whose keys map one to one onto typed constructor arguments."""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Type, TypeVar, Union

import yaml

T = TypeVar("T")

#: Top-level sections of a run config.
SECTIONS = ("model", "model_args", "data", "train")


def check_kwargs(target: Union[Callable[..., Any], type], kwargs: Mapping[str, Any], where: str,
                 skip: tuple = ()) -> None:
    """Raise ``ValueError`` naming ``where`` if ``kwargs`` has keys ``target`` does not accept."""
    if dataclasses.is_dataclass(target):
        valid = {f.name for f in dataclasses.fields(target)}  # type: ignore[arg-type]
    else:
        sig = inspect.signature(target)  # type: ignore[arg-type]
        valid = {n for n, p in sig.parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    valid -= set(skip)
    unknown = sorted(set(kwargs) - valid)
    if unknown:
        name = getattr(target, "__name__", str(target))
        raise ValueError(f"{where}: unknown key(s) {unknown} for {name}; valid keys: {sorted(valid)}")


def dataclass_from(cls: Type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``mapping``, rejecting unknown keys with a message naming ``where``."""
    mapping = dict(mapping or {})
    check_kwargs(cls, mapping, where)
    try:
        return cls(**mapping)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def load_config(path: Union[str, Path]) -> Dict[str, Any]:
    """Read a run config YAML and check its top-level sections."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: expected a mapping with sections {SECTIONS}, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; valid sections: {list(SECTIONS)}")
    for section in ("model_args", "data", "train"):
        if cfg.get(section) is None:
            cfg[section] = {}  # an empty section in YAML reads as None
        elif not isinstance(cfg[section], dict):
            raise ValueError(f"{path}: section '{section}' must be a mapping, got {type(cfg[section]).__name__}")
    return cfg
