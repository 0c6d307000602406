"""Data layer: readers, id maps, splits, synthetic data, dataset registry -> HeteroData."""
from graphcf.data.idmap import IdMap, Vocab
from graphcf.data.interactions import Interactions, RawInteractions, encode
from graphcf.data.build import (
    has_split,
    interactions_of,
    num_users_items,
    split_edge_index,
    to_heterodata,
    train_edge_index,
    user_item_csr,
)

__all__ = [
    "IdMap", "Vocab", "Interactions", "RawInteractions", "encode", "to_heterodata",
    "train_edge_index", "split_edge_index", "has_split", "num_users_items", "interactions_of",
    "user_item_csr",
]

from graphcf.data.readers import (
    ReaderError,
    read_delimited,
    read_lightgcn,
    read_movielens,
    read_ncf_negative,
    read_ncf_rating,
    read_triples,
)
from graphcf.data.preprocess import binarize, concat, drop_duplicates, kcore
from graphcf.data.loaders import UNSEEN_POLICIES, load_lightgcn_dir, load_ncf, load_triples_dir

__all__ += [
    "ReaderError", "read_lightgcn", "read_triples", "read_ncf_rating", "read_ncf_negative",
    "read_movielens", "read_delimited",
    "drop_duplicates", "binarize", "kcore", "concat",
    "load_lightgcn_dir", "load_triples_dir", "load_ncf", "UNSEEN_POLICIES",
]

from graphcf.data.datasets import (
    ArchiveMember,
    ChecksumError,
    DatasetError,
    DatasetSpec,
    DownloadError,
    RemoteFile,
    default_root,
    describe,
    download,
    fetch_dataset,
    get_spec,
    list_datasets,
    load_dataset,
    mirror_url,
    register_dataset,
    unregister_dataset,
)

__all__ += [
    "DatasetSpec", "RemoteFile", "ArchiveMember", "DatasetError", "DownloadError", "ChecksumError",
    "default_root", "describe", "download", "fetch_dataset", "get_spec", "list_datasets", "load_dataset",
    "mirror_url", "register_dataset", "unregister_dataset",
]
