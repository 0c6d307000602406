"""YAML run configs whose keys map one to one onto typed constructor arguments."""
from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Type, TypeVar, Union

import yaml

T = TypeVar("T")

#: Top-level sections of a run config.
SECTIONS = ("model", "model_args", "data", "train", "objective")


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


def coerce_value(value: Any, annotation: Any, where: str) -> Any:
    """``value`` as the scalar type ``annotation`` (``float``, ``int``, ``bool``) names; others unchanged.

    YAML 1.1 (PyYAML) reads ``5e-3`` and ``1e4`` as *strings* (a float needs a dot: ``5.0e-3``),
    so a ``float`` field accepts a string ``float()`` parses, and an ``int``; an ``int`` field
    accepts an integral float (``1e4`` written ``1.0e4``) or a digit string. Anything else that
    is not of the field's type raises ``ValueError`` naming ``where`` and the expected type.
    """
    if annotation is float:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{where}: expected a number, got the string {value!r}") from None
        raise ValueError(f"{where}: expected a number, got {value!r} ({type(value).__name__})")
    if annotation is int:
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                f = float("nan")
            if f.is_integer():
                return int(f)
        raise ValueError(f"{where}: expected an integer, got {value!r} ({type(value).__name__})")
    if annotation is bool and not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r} ({type(value).__name__})")
    return value


def coerce_kwargs(target: Union[Callable[..., Any], type], kwargs: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """``kwargs`` with each value passed through :func:`coerce_value` for ``target``'s annotation of it."""
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: leave the values as they are
        hints = {}
    return {k: coerce_value(v, hints.get(k), f"{where}: {k}") for k, v in kwargs.items()}


def dataclass_from(cls: Type[T], mapping: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``mapping``, rejecting unknown keys with a message naming ``where``.

    Scalar values are coerced to the field's type (:func:`coerce_value`: ``lr: 5e-3``, which
    YAML reads as a string, becomes ``0.005``); a value of the wrong type raises ``ValueError``.
    """
    mapping = dict(mapping or {})
    check_kwargs(cls, mapping, where)
    mapping = coerce_kwargs(cls, mapping, where)
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
    for section in ("model_args", "data", "train", "objective"):
        if cfg.get(section) is None:
            cfg[section] = {}  # an empty section in YAML reads as None
        elif not isinstance(cfg[section], dict):
            raise ValueError(f"{path}: section '{section}' must be a mapping, got {type(cfg[section]).__name__}")
    return cfg
