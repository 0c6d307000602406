"""The model registry used by the CLI: name -> encoder class (and its default scorer)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple, Type

from graphcf.config import check_kwargs
from graphcf.nn.encoders import Encoder, MFEncoder, PopularityEncoder
from graphcf.nn.scorers import DotScorer, Scorer

MODELS: Dict[str, Type[Encoder]] = {
    "popularity": PopularityEncoder,
    "mf": MFEncoder,
}


def build_model(name: str, num_users: int, num_items: int,
                model_args: Mapping[str, Any] | None = None) -> Tuple[Encoder, Scorer]:
    """Instantiate encoder ``name`` with ``model_args`` (checked against its constructor) and its scorer."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}")
    cls = MODELS[name]
    args = dict(model_args or {})
    check_kwargs(cls.__init__, args, f"model_args for {name!r}", skip=("num_users", "num_items"))
    return cls(num_users, num_items, **args), DotScorer()
