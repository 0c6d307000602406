"""Dataset registry: downloads against a loopback HTTP server, caching, checksums, local copies."""
from __future__ import annotations

import hashlib
import http.server
import io
import logging
import socket
import threading
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import pytest

from graphcf.data import datasets as ds
from graphcf.data.build import has_split, num_users_items, split_edge_index, to_heterodata
from graphcf.data.interactions import RawInteractions, encode

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_CITEULIKE = REPO_ROOT.parent / "shared" / "data" / "citeulike"

TRAIN = b"0 0\n0 1\n1 1\n1 2\n2 0\n2 3\n"
TEST = b"0 2\n1 3\n2 1\n"
# tiny MovieLens u.data: 3 users, timestamps decide the leave-one-out split
UDATA = b"".join(
    f"{u}\t{i}\t{r}\t{t}\n".encode()
    for u, i, r, t in [(1, 10, 5, 100), (1, 11, 3, 200), (1, 12, 4, 300), (1, 13, 2, 400),
                       (2, 10, 1, 50), (2, 12, 2, 60), (2, 13, 3, 70),
                       (3, 11, 4, 10), (3, 12, 5, 30), (3, 10, 5, 20)]
)


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# --------------------------------------------------------------------------- loopback server


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: List[str]  # set per server

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.endswith("/truncated.txt"):  # promise 1000 bytes, send 10, hang up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0 1\n1 2\n3 ")
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


class Server:
    def __init__(self, directory: Path) -> None:
        handler = lambda *a, **kw: _Handler(*a, directory=str(directory), **kw)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    @property
    def requests(self) -> List[str]:
        return self.httpd.requests  # type: ignore[attr-defined]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Tuple[Server, Path]]:
    """A loopback HTTP server over ``tmp_path/www``; shut down after the test."""
    www = tmp_path / "www"
    www.mkdir()
    server = Server(www)
    try:
        yield server, www
    finally:
        server.close()


def closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


# --------------------------------------------------------------------------- test-only specs


def _load_pairs(directory: Path):
    def read(name: str) -> RawInteractions:
        a = np.loadtxt(directory / name, dtype=np.int64, ndmin=2)
        return RawInteractions(a[:, 0], a[:, 1], source=name)

    splits, idmap = encode({"train": read("train.txt"), "test": read("test.txt")})
    return to_heterodata(splits), idmap


NAME = "graphcf-test-mini"


def mini_spec(base: str, train_sha: str | None = sha(TRAIN), test_sha: str | None = sha(TEST)) -> ds.DatasetSpec:
    return ds.DatasetSpec(
        name=NAME, description="test fixture",
        files=(ds.RemoteFile(base + "mini/train.txt", "train.txt", sha256=train_sha),
               ds.RemoteFile(base + "mini/test.txt", "test.txt", sha256=test_sha)),
        loader=_load_pairs, num_users=3, num_items=4, num_interactions=9,
    )


@pytest.fixture
def registered() -> Iterator[Dict[str, ds.DatasetSpec]]:
    """Register test specs through this dict's ``add``; unregistered afterwards."""
    added: Dict[str, ds.DatasetSpec] = {}
    yield added
    for name in added:
        ds.unregister_dataset(name)


def register(reg: Dict[str, ds.DatasetSpec], spec: ds.DatasetSpec) -> ds.DatasetSpec:
    reg[spec.name] = ds.register_dataset(spec, overwrite=True)
    return spec


def write_mini(www: Path) -> None:
    (www / "mini").mkdir(exist_ok=True)
    (www / "mini" / "train.txt").write_bytes(TRAIN)
    (www / "mini" / "test.txt").write_bytes(TEST)


def leftovers(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".part"))


# --------------------------------------------------------------------------- tests


@pytest.fixture(autouse=True)
def _no_env_mirror(monkeypatch) -> None:
    monkeypatch.delenv("GRAPHCF_MIRROR", raising=False)


def test_download_then_cache_reuse(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    write_mini(www)
    register(registered, mini_spec(server.url))
    root = tmp_path / "cache"

    data, idmap = ds.load_dataset(NAME, root=root, progress=True)
    assert num_users_items(data) == (3, 4)
    assert split_edge_index(data, "train").shape[1] == 6 and split_edge_index(data, "test").shape[1] == 3
    assert sorted(server.requests) == ["/mini/test.txt", "/mini/train.txt"]
    assert (root / NAME / "train.txt").read_bytes() == TRAIN
    assert leftovers(root) == []

    data2, idmap2 = ds.load_dataset(NAME, root=root)  # cached: the server is not asked again
    assert len(server.requests) == 2
    assert idmap2 == idmap and bool((split_edge_index(data2, "test") == split_edge_index(data, "test")).all())
    # download=False works from the cache too
    ds.load_dataset(NAME, root=root, download=False)
    assert len(server.requests) == 2


def test_default_root_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GRAPHCF_DATA", str(tmp_path / "d"))
    assert ds.default_root() == tmp_path / "d"
    monkeypatch.delenv("GRAPHCF_DATA")
    assert ds.default_root() == Path.home() / ".cache" / "graphcf"


def test_checksum_mismatch_keeps_nothing(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    write_mini(www)
    wrong = "0" * 64
    register(registered, mini_spec(server.url, test_sha=wrong))
    root = tmp_path / "cache"
    with pytest.raises(ds.ChecksumError) as ei:
        ds.load_dataset(NAME, root=root)
    msg = str(ei.value)
    assert "test.txt" in msg and server.url + "mini/test.txt" in msg and wrong in msg and sha(TEST) in msg
    assert ei.value.expected == wrong and ei.value.actual == sha(TEST)
    assert not (root / NAME / "test.txt").exists()
    assert leftovers(root) == []
    # a checksum mismatch is not retried
    assert server.requests.count("/mini/test.txt") == 1


def test_server_down_raises_download_error_quickly(registered, tmp_path: Path) -> None:
    url = closed_port_url()
    register(registered, mini_spec(url))
    root = tmp_path / "cache"
    t0 = time.perf_counter()
    with pytest.raises(ds.DownloadError) as ei:
        ds.load_dataset(NAME, root=root, retries=1, timeout=2)
    assert time.perf_counter() - t0 < 5
    msg = str(ei.value)
    assert url + "mini/" in msg and "local_dir=" in msg and "--path" in msg
    assert "refused" in msg.lower() or "connect" in msg.lower()
    assert ei.value.url.startswith(url)
    assert not any(p.is_file() for p in root.rglob("*"))


def test_http_404_and_truncated_transfer(serve, tmp_path: Path) -> None:
    server, www = serve
    dest = tmp_path / "out" / "x.txt"
    with pytest.raises(ds.DownloadError, match="HTTP 404"):
        ds.download(server.url + "missing.txt", dest, retries=3)
    assert server.requests == ["/missing.txt"]  # 4xx: no retry
    with pytest.raises(ds.DownloadError, match="truncated.txt"):
        ds.download(server.url + "truncated.txt", dest, retries=1)
    assert server.requests.count("/truncated.txt") == 2  # network failure: retried
    assert not dest.exists() and leftovers(tmp_path / "out") == []


def test_download_replaces_atomically_and_warns_once_without_hash(serve, tmp_path: Path, caplog) -> None:
    server, www = serve
    write_mini(www)
    dest = tmp_path / "out" / "train.txt"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    with pytest.raises(ds.ChecksumError):
        ds.download(server.url + "mini/train.txt", dest, sha256="f" * 64)
    assert dest.read_bytes() == b"old"  # a failed download leaves the previous file untouched
    with caplog.at_level(logging.WARNING, logger="graphcf.data.datasets"):
        ds.download(server.url + "mini/train.txt", dest, progress=True)
        ds.download(server.url + "mini/train.txt", dest)
    assert dest.read_bytes() == TRAIN
    assert sum("no known sha256" in r.getMessage() for r in caplog.records) == 1


def test_corrupt_cache_is_fetched_again(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    write_mini(www)
    register(registered, mini_spec(server.url))
    root = tmp_path / "cache"
    ds.load_dataset(NAME, root=root)
    (root / NAME / "train.txt").write_bytes(b"0 0\n")
    with pytest.raises(ds.ChecksumError, match="cached file"):
        ds.load_dataset(NAME, root=root, download=False)
    ds.load_dataset(NAME, root=root)
    assert (root / NAME / "train.txt").read_bytes() == TRAIN
    assert server.requests.count("/mini/train.txt") == 2


def test_mirror_replaces_upstream(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    # mirror layout: <mirror>/<name>/<filename>; the spec's own URLs point at a closed port
    (www / "pre" / NAME).mkdir(parents=True)
    (www / "pre" / NAME / "train.txt").write_bytes(TRAIN)
    (www / "pre" / NAME / "test.txt").write_bytes(TEST)
    register(registered, mini_spec(closed_port_url()))
    data, _ = ds.load_dataset(NAME, root=tmp_path / "c", mirror=server.url + "pre", retries=0)
    assert sorted(server.requests) == [f"/pre/{NAME}/test.txt", f"/pre/{NAME}/train.txt"]
    assert num_users_items(data) == (3, 4)
    assert ds.mirror_url("https://m.example/a/", "gowalla", "train.txt") == "https://m.example/a/gowalla/train.txt"
    assert ds.mirror_url("file:///srv/data", "x", "y.zip") == "file:///srv/data/x/y.zip"
    with pytest.raises(ValueError, match="mirror"):
        ds.mirror_url("127.0.0.1:8000", "x", "y")


def test_local_dir(registered, tmp_path: Path) -> None:
    register(registered, mini_spec(closed_port_url()))  # any network use would fail
    local = tmp_path / "local"
    local.mkdir()
    (local / "train.txt").write_bytes(TRAIN)
    with pytest.raises(FileNotFoundError) as ei:
        ds.load_dataset(NAME, root=tmp_path / "c", local_dir=local)
    assert str(local / "test.txt") in str(ei.value) and "train.txt, test.txt" in str(ei.value)
    (local / "test.txt").write_bytes(TEST + b"0 3\n")
    with pytest.raises(ds.ChecksumError, match="verify=False"):
        ds.load_dataset(NAME, root=tmp_path / "c", local_dir=local)
    data, _ = ds.load_dataset(NAME, root=tmp_path / "c", local_dir=local, verify=False)
    assert split_edge_index(data, "test").shape[1] == 4
    (local / "test.txt").write_bytes(TEST)
    data, _ = ds.load_dataset(NAME, root=tmp_path / "c", local_dir=local)
    assert split_edge_index(data, "test").shape[1] == 3
    assert not (tmp_path / "c").exists()  # plain files are read in place
    with pytest.raises(FileNotFoundError, match="download=False"):
        ds.load_dataset(NAME, root=tmp_path / "c", download=False)


def test_unknown_name() -> None:
    with pytest.raises(ValueError) as ei:
        ds.load_dataset("no-such-dataset")
    for known in ("gowalla", "ml-100k", "citeulike"):
        assert known in str(ei.value)


def _zip(members: Dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def tiny_ml_spec(base: str, member_sha: str | None = sha(UDATA)) -> ds.DatasetSpec:
    return ds.DatasetSpec(
        name="graphcf-test-ml", description="test fixture",
        files=(ds.RemoteFile(base + "ml/tiny.zip", "tiny.zip", sha256=None, extract=True,
                             members=(ds.ArchiveMember("tiny/u.data", "u.data", sha256=member_sha),)),),
        loader=ds.MovieLensLOOLoader("u.data", seed=0),
    )


def test_zip_archive_extraction(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    (www / "ml").mkdir()
    (www / "ml" / "tiny.zip").write_bytes(_zip({"tiny/README": b"hi", "tiny/u.data": UDATA}))
    register(registered, tiny_ml_spec(server.url))
    root = tmp_path / "cache"
    data, idmap = ds.load_dataset("graphcf-test-ml", root=root)
    assert (root / "graphcf-test-ml" / "u.data").read_bytes() == UDATA
    assert not (root / "graphcf-test-ml" / "README").exists()
    assert num_users_items(data) == (3, 4)
    test = split_edge_index(data, "test")
    val = split_edge_index(data, "val")
    # latest per user is test, second latest val (raw ids 1..3 / 10..13 -> indices)
    got_test = {(int(u), int(i)) for u, i in zip(idmap.decode_users(test[0]), idmap.decode_items(test[1]))}
    got_val = {(int(u), int(i)) for u, i in zip(idmap.decode_users(val[0]), idmap.decode_items(val[1]))}
    assert got_test == {(1, 13), (2, 13), (3, 12)} and got_val == {(1, 12), (2, 12), (3, 10)}
    assert has_split(data, "val") and split_edge_index(data, "train").shape[1] == 4
    ds.load_dataset("graphcf-test-ml", root=root)
    assert server.requests == ["/ml/tiny.zip"]  # cached members: no second request


def test_zip_bad_member_and_local_archive(serve, registered, tmp_path: Path) -> None:
    server, www = serve
    (www / "ml").mkdir()
    (www / "ml" / "tiny.zip").write_bytes(_zip({"tiny/u.data": UDATA + b"9\t9\t1\t1\n"}))
    register(registered, tiny_ml_spec(server.url))
    root = tmp_path / "cache"
    with pytest.raises(ds.ChecksumError, match="u.data"):
        ds.load_dataset("graphcf-test-ml", root=root)
    assert not (root / "graphcf-test-ml" / "u.data").exists() and leftovers(root) == []
    # a local directory holding only the archive: members are extracted into the cache
    local = tmp_path / "local"
    local.mkdir()
    (local / "tiny.zip").write_bytes(_zip({"tiny/u.data": UDATA}))
    n = len(server.requests)
    data, _ = ds.load_dataset("graphcf-test-ml", root=root, local_dir=local)
    assert len(server.requests) == n
    assert (root / "graphcf-test-ml" / "u.data").read_bytes() == UDATA
    assert num_users_items(data) == (3, 4)


def test_registry_contents() -> None:
    names = ds.list_datasets()
    for n in ("gowalla", "yelp2018", "amazon-book", "ml-100k", "ml-1m", "ml-1m-ncf", "pinterest-20-ncf",
              "citeulike", "amazon-beauty"):
        assert n in names
    text = ds.describe("gowalla")
    assert "29,858 users" in text and "7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62" in text
    ml = ds.describe("ml-100k")
    assert "unknown (not verified)" in ml and "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490" in ml
    assert ds.get_spec("ml-1m-ncf").local_names == ("ml-1m.train.rating", "ml-1m.test.rating", "ml-1m.test.negative")
    for spec in map(ds.get_spec, names):
        assert all(f.url.startswith("https://") for f in spec.files)
        assert spec.num_users and spec.num_items and spec.num_interactions and spec.citation and spec.split
    with pytest.raises(ValueError, match="already registered"):
        ds.register_dataset(ds.get_spec("gowalla"))


def test_builtin_loaders_on_tiny_local_copies(tmp_path: Path, caplog) -> None:
    lg = tmp_path / "yelp2018"
    lg.mkdir()
    (lg / "train.txt").write_text("0 0 1\n1 1 2\n2 0 2\n")
    (lg / "test.txt").write_text("0 2\n1 0\n2 1\n")
    with caplog.at_level(logging.WARNING, logger="graphcf.data.datasets"):
        data, _ = ds.load_dataset("yelp2018", root=tmp_path / "c", local_dir=lg)
    assert num_users_items(data) == (3, 3) and split_edge_index(data, "test").shape[1] == 3
    assert any("the registry reports" in r.getMessage() for r in caplog.records)  # 3 users != 31,668

    ncf = tmp_path / "ncf"
    ncf.mkdir()
    (ncf / "ml-1m.train.rating").write_text("0\t0\t5\t10\n0\t1\t3\t11\n1\t1\t4\t12\n")
    (ncf / "ml-1m.test.rating").write_text("0\t2\t4\t20\n1\t0\t2\t21\n")
    (ncf / "ml-1m.test.negative").write_text("(0,2)\t3\t1\n(1,0)\t2\t3\n")
    data, _ = ds.load_dataset("ml-1m-ncf", root=tmp_path / "c", local_dir=ncf)
    assert split_edge_index(data, "test").shape[1] == 2
    assert tuple(data["user", "interacts", "item"].test_neg_items.shape) == (2, 2)

    ml = tmp_path / "ml1m"
    ml.mkdir()
    (ml / "ratings.dat").write_bytes(UDATA.replace(b"\t", b"::"))
    data, idmap = ds.load_dataset("ml-1m", root=tmp_path / "c", local_dir=ml)
    assert num_users_items(data) == (3, 4)
    assert {s: split_edge_index(data, s).shape[1] for s in ("train", "val", "test")} == {"train": 4, "val": 3, "test": 3}
    assert "edge_weight" not in data["user", "interacts", "item"]  # ratings are not edge weights
    assert not (tmp_path / "c").exists()


@pytest.mark.skipif(not SHARED_CITEULIKE.is_dir(), reason=f"shared benchmark data not present at {SHARED_CITEULIKE}")
def test_citeulike_shared_copy(tmp_path: Path) -> None:
    spec = ds.get_spec("citeulike")
    data, idmap = ds.load_dataset("citeulike", root=tmp_path / "cache", local_dir=SHARED_CITEULIKE)
    assert num_users_items(data) == (spec.num_users, spec.num_items) == (5551, 16980)
    sizes = {s: split_edge_index(data, s).shape[1] for s in ("train", "val", "test")}
    assert sizes == dict(spec.split_sizes) == {"train": 151918, "val": 18727, "test": 39883}
    assert not (tmp_path / "cache").exists()


@pytest.mark.skipif(not SHARED_CITEULIKE.is_dir(), reason=f"shared benchmark data not present at {SHARED_CITEULIKE}")
def test_citeulike_builtin_spec_over_loopback_mirror(tmp_path: Path) -> None:
    # shared/data/<name>/<file> is the mirror layout: download the real files with their real checksums
    server = Server(SHARED_CITEULIKE.parent)
    try:
        root = tmp_path / "cache"
        data, _ = ds.load_dataset("citeulike", root=root, mirror=server.url, retries=0)
        assert sorted(server.requests) == ["/citeulike/test.txt", "/citeulike/train.txt", "/citeulike/valid.txt"]
        assert num_users_items(data) == (5551, 16980)
        ds.load_dataset("citeulike", root=root, mirror=server.url)
        assert len(server.requests) == 3
    finally:
        server.close()
