"""One typed description of "where the data comes from and how it is split".

:class:`DataConfig` is what the CLI's YAML ``data:`` section maps onto, and
:func:`load_data` turns it into ``(HeteroData, IdMap)``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

from torch_geometric.data import HeteroData

from graphcf.data.build import has_split, interactions_of, to_heterodata
from graphcf.data.idmap import IdMap
from graphcf.data.interactions import Interactions, encode
from graphcf.typing import INTERACTS

logger = logging.getLogger(__name__)

FORMATS = ("lightgcn", "triples", "ncf", "movielens", "csv")


@dataclass
class DataConfig:
    """Where the interactions come from and how they are split.

    Args:
        dataset: a registry name (see ``graphcf datasets list``) or ``"synthetic"``
            (generated, no download). Ignored when ``path`` is given.
        path: a local file or directory instead of the registry.
        format: the format of ``path``: ``lightgcn`` (``train.txt``/``test.txt`` of
            ``user item item ...`` lines), ``triples`` (``train/valid/test.txt`` of
            ``user item 1``), ``ncf`` (path prefix of ``.train.rating`` etc.),
            ``movielens`` (``u.data`` / ``ratings.dat``), ``csv`` (a delimited file).
        root: registry cache directory (default ``$GRAPHCF_DATA`` or ``~/.cache/graphcf``).
        split: for single-file data: ``"loo"`` (leave latest out: test, second latest:
            val) or ``"random"`` (per-user ratio holdout). Ignored for pre-split formats.
        ratios: the ``random`` split's ``(train, val, test)`` ratios.
        val_ratio: carve a validation split of this per-user ratio out of a train
            file that has none (0: no validation split).
        min_rating: binarise explicit ratings: keep rows with rating >= this.
        kcore: keep users and items with at least this many interactions (0: off).
        user_col, item_col, rating_col, time_col, sep: columns of a ``csv`` file.
        seed: seed of every random split.
        synthetic: keyword arguments of :func:`graphcf.data.synthetic.make_synthetic`.
    """

    dataset: str = "synthetic"
    path: Optional[str] = None
    format: Optional[str] = None
    root: Optional[str] = None
    split: str = "loo"
    ratios: Tuple[float, ...] = (0.8, 0.1, 0.1)
    val_ratio: float = 0.0
    min_rating: Optional[float] = None
    kcore: int = 0
    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: Optional[str] = None
    time_col: Optional[str] = None
    sep: str = ","
    seed: int = 0
    synthetic: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format is not None and self.format not in FORMATS:
            raise ValueError(f"DataConfig.format must be one of {FORMATS}, got {self.format!r}")
        if self.split not in ("loo", "random"):
            raise ValueError(f"DataConfig.split must be 'loo' or 'random', got {self.split!r}")
        if not 0 <= self.val_ratio < 1:
            raise ValueError(f"DataConfig.val_ratio must be in [0, 1), got {self.val_ratio}")
        self.ratios = tuple(float(r) for r in self.ratios)


def _split_single(inter: Interactions, cfg: DataConfig) -> Dict[str, Interactions]:
    from graphcf.data.split import leave_one_out, random_split

    if cfg.split == "loo":
        if inter.timestamp is None:
            raise ValueError("DataConfig.split='loo' needs timestamps; this data has none (use split: random)")
        return leave_one_out(inter, with_val=True, seed=cfg.seed)
    return random_split(inter, cfg.ratios, seed=cfg.seed)


def _single_file(path: Path, cfg: DataConfig) -> Tuple[HeteroData, IdMap]:
    from graphcf.data import preprocess, readers

    if cfg.format == "movielens":
        raw = readers.read_movielens(path)
    else:
        raw = readers.read_delimited(path, user_col=cfg.user_col, item_col=cfg.item_col,
                                     rating_col=cfg.rating_col, time_col=cfg.time_col, sep=cfg.sep)
    raw = preprocess.drop_duplicates(raw)
    if cfg.min_rating is not None:
        raw = preprocess.binarize(raw, cfg.min_rating)
    if cfg.kcore > 0:
        raw = preprocess.kcore(raw, cfg.kcore, cfg.kcore)
    enc, idmap = encode({"all": raw})
    return to_heterodata(_split_single(enc["all"], cfg)), idmap


def load_data(cfg: DataConfig) -> Tuple[HeteroData, IdMap]:
    """Load and split the data described by ``cfg``; carve validation if asked."""
    if cfg.path is not None:
        path = Path(cfg.path)
        fmt = cfg.format
        if fmt is None:
            raise ValueError(f"DataConfig: give 'format' (one of {FORMATS}) for path {path}")
        from graphcf.data import loaders

        if fmt == "lightgcn":
            data, idmap = loaders.load_lightgcn_dir(path)
        elif fmt == "triples":
            data, idmap = loaders.load_triples_dir(path)
        elif fmt == "ncf":
            data, idmap = loaders.load_ncf(str(path))
        else:
            if not path.is_file():
                raise FileNotFoundError(f"DataConfig.path: {path} is not a file (format {fmt!r} reads one file)")
            data, idmap = _single_file(path, cfg)
    elif cfg.dataset == "synthetic":
        from graphcf.data.synthetic import make_synthetic

        inter, _, _ = make_synthetic(seed=cfg.seed, **cfg.synthetic)  # type: ignore[arg-type]
        data = to_heterodata(_split_single(inter, cfg))
        idmap = IdMap.identity(inter.num_users, inter.num_items)
    else:
        from graphcf.data.datasets import load_dataset

        data, idmap = load_dataset(cfg.dataset, root=cfg.root, progress=True)
    if cfg.val_ratio > 0:
        data = with_validation(data, cfg.val_ratio, seed=cfg.seed)
    return data, idmap


def with_validation(data: HeteroData, ratio: float, seed: int = 0) -> HeteroData:
    """A copy of ``data`` whose training edges lose a per-user ``ratio`` to a new ``val`` split.

    Use it for files with no validation split (e.g. the LightGCN Gowalla split): tune
    on ``val``, then retrain on the whole train file and report ``test``.
    """
    from graphcf.data.split import carve_validation

    if has_split(data, "val"):
        raise ValueError("with_validation: this graph already has a 'val' split")
    splits = {s: interactions_of(data, s) for s in ("train", "test") if has_split(data, s)}
    splits["train"], splits["val"] = carve_validation(splits["train"], ratio, seed=seed)
    extra = {k: v for k, v in data[INTERACTS].items() if k.startswith("test_neg")}
    out = to_heterodata(splits)
    for k, v in extra.items():
        out[INTERACTS][k] = v
    return out
