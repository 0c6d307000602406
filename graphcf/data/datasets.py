"""Dataset registry: public benchmark datasets -> ``(HeteroData, IdMap)``.

Every dataset is described by a :class:`DatasetSpec`: where its files live
(:class:`RemoteFile`, optionally an archive with :class:`ArchiveMember` entries),
their sha256 checksums where known, how to read them (a loader turning the local
directory into ``(HeteroData, IdMap)``), how the splits were made and the counts
reported for it.

Three ways to get the files, all through :func:`load_dataset`:

* **Download and cache** (default): files go to ``<root>/<name>/`` where ``root``
  is :func:`default_root` (``$GRAPHCF_DATA`` or ``~/.cache/graphcf``). A file
  already in the cache is reused (re-verified when its checksum is known), so only
  the first call touches the network.
* **Local copy**: ``load_dataset(name, local_dir=path)`` reads the files from
  ``path`` (the expected names are listed by :func:`describe`) and never uses the
  network. An archive (e.g. ``ml-100k.zip``) in ``path`` is accepted in place of its
  members; they are then extracted into the cache.
* **Mirror**: ``load_dataset(name, mirror="https://host/prefix/")`` (or the
  environment variable ``GRAPHCF_MIRROR``) downloads every file from
  ``<mirror>/<name>/<filename>`` instead of its upstream URL. The layout is the
  cache layout, so serving a populated cache root over HTTP (or a ``file://``
  URL pointing at one) makes a mirror. Checksums are verified exactly as for the
  upstream URLs. :meth:`DatasetSpec.with_mirror` does the same for one spec.

Checksums: a file whose ``sha256`` is known is verified after every download and
whenever it is read from the cache or a local directory (pass ``verify=False`` to
skip). Where the checksum is not known (``sha256=None``) verification is skipped
and a warning is logged once per file and process; no hash is ever guessed.

Example:
    >>> from graphcf.data import load_dataset, list_datasets    # doctest: +SKIP
    >>> data, idmap = load_dataset("gowalla", progress=True)     # doctest: +SKIP
    >>> data, idmap = load_dataset("citeulike", local_dir="path/to/citeulike")  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union

from torch_geometric.data import HeteroData

from graphcf.data.idmap import IdMap

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
#: A loader turns the directory holding a dataset's files into the graph and its id map.
Loader = Callable[[Path], Tuple[HeteroData, IdMap]]

#: Environment variable overriding the cache root (see :func:`default_root`).
ENV_DATA = "GRAPHCF_DATA"
#: Environment variable naming a default mirror (see :func:`load_dataset`).
ENV_MIRROR = "GRAPHCF_MIRROR"

_CHUNK = 1 << 20
_ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_warned_unverified: Set[str] = set()


# --------------------------------------------------------------------------- errors


class DatasetError(RuntimeError):
    """Base class of the errors raised by the dataset registry."""


class DownloadError(DatasetError):
    """A file could not be fetched (connection refused, timeout, HTTP error, ...).

    Attributes:
        url: the URL that failed.
        reason: a short description of the failure.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"could not download {url}: {reason}. Without network access, fetch the file elsewhere "
            f"and pass local_dir=<directory> to load_dataset (CLI: --path <directory>), or set mirror= "
            f"(or ${ENV_MIRROR}) to a mirror's base URL"
        )


class ChecksumError(DatasetError):
    """A file's sha256 differs from the expected one; the file was not kept (downloads).

    Attributes:
        path: the file that was checked (for a download: its destination).
        url: where it came from (``None`` for a local copy).
        expected: the expected hex digest.
        actual: the digest of the bytes received / found.
    """

    def __init__(self, path: PathLike, url: Optional[str], expected: str, actual: str, hint: str = "") -> None:
        self.path = Path(path)
        self.url = url
        self.expected = expected
        self.actual = actual
        origin = f" downloaded from {url}" if url else ""
        super().__init__(
            f"sha256 mismatch for {self.path.name}{origin} (at {self.path}): expected {expected}, "
            f"got {actual}" + (f". {hint}" if hint else "")
        )


# --------------------------------------------------------------------------- specs


def _check_plain_name(name: str, what: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
        raise ValueError(f"{what} must be a plain file name (no directories), got {name!r}")


@dataclass(frozen=True)
class ArchiveMember:
    """One file to take out of an archive.

    Attributes:
        path: the member's path inside the archive (``"ml-100k/u.data"``).
        filename: the plain name it gets in the dataset directory (``"u.data"``).
        sha256: expected hex digest of the extracted bytes, or ``None`` when unknown
            (then not verified; a warning is logged once).
    """

    path: str
    filename: str
    sha256: Optional[str] = None

    def __post_init__(self) -> None:
        _check_plain_name(self.filename, "ArchiveMember.filename")


@dataclass(frozen=True)
class RemoteFile:
    """A file of a dataset: where to download it and how to check it.

    Attributes:
        url: upstream URL (``http(s)://``, ``ftp://`` or ``file://``).
        filename: plain local file name in the dataset directory.
        sha256: expected hex digest, or ``None`` when unknown (verification skipped,
            a warning is logged once).
        size: expected size in bytes, if known (used for the progress bar and checked).
        extract: the file is an archive (``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``);
            ``members`` are extracted next to it.
        members: for archives, the members the loader needs.
    """

    url: str
    filename: str
    sha256: Optional[str] = None
    size: Optional[int] = None
    extract: bool = False
    members: Tuple[ArchiveMember, ...] = ()

    def __post_init__(self) -> None:
        _check_plain_name(self.filename, "RemoteFile.filename")
        object.__setattr__(self, "members", tuple(self.members))
        if self.extract:
            if not self.filename.lower().endswith(_ARCHIVE_SUFFIXES):
                raise ValueError(
                    f"RemoteFile {self.filename!r}: extract=True needs an archive name ending in "
                    f"{', '.join(_ARCHIVE_SUFFIXES)}"
                )
            if not self.members:
                raise ValueError(f"RemoteFile {self.filename!r}: extract=True needs the list of members to extract")
        elif self.members:
            raise ValueError(f"RemoteFile {self.filename!r}: members are only meaningful with extract=True")

    @property
    def local_names(self) -> Tuple[str, ...]:
        """The file names the loader reads: the members of an archive, else ``filename``."""
        return tuple(m.filename for m in self.members) if self.extract else (self.filename,)


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the registry knows about one dataset.

    Attributes:
        name: registry key (``"gowalla"``); also the cache sub-directory.
        description: one or two sentences on what the data is.
        files: the files to fetch.
        loader: turns the directory holding the (extracted) files into
            ``(HeteroData, IdMap)``.
        format: short name of the file format (for :func:`describe`).
        split: how train / val / test were made.
        citation: the paper(s) to cite.
        source: upstream repository or web page.
        license: license or usage terms, when stated.
        num_users, num_items, num_interactions: reported counts (``None`` if unknown).
        split_sizes: reported interactions per split (``{"train": ..., "test": ...}``).
        counts_note: where the counts come from (verified on the files, or a paper).
    """

    name: str
    description: str
    files: Tuple[RemoteFile, ...]
    loader: Loader
    format: str = ""
    split: str = ""
    citation: str = ""
    source: str = ""
    license: str = ""
    num_users: Optional[int] = None
    num_items: Optional[int] = None
    num_interactions: Optional[int] = None
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    counts_note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))
        _check_plain_name(self.name, "DatasetSpec.name")
        names = [f.filename for f in self.files] + [m.filename for f in self.files for m in f.members]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"DatasetSpec {self.name!r}: file names used twice: {sorted(dup)}")

    @property
    def local_names(self) -> Tuple[str, ...]:
        """All file names the loader reads from the dataset directory."""
        return tuple(n for f in self.files for n in f.local_names)

    def with_mirror(self, base_url: str) -> "DatasetSpec":
        """A copy whose files are fetched from ``<base_url>/<name>/<filename>``.

        Only the URLs change; checksums, sizes and the loader stay, so a mirror is
        verified like the upstream. ``base_url`` may be ``http(s)://``, ``ftp://`` or
        ``file://`` and may carry a path prefix (``https://mirror.example/graphcf/``).
        """
        return replace(self, files=tuple(replace(f, url=mirror_url(base_url, self.name, f.filename)) for f in self.files))


def mirror_url(base_url: str, name: str, filename: str) -> str:
    """The URL of ``filename`` of dataset ``name`` on a mirror rooted at ``base_url``.

    Example:
        >>> mirror_url("http://127.0.0.1:8000", "gowalla", "train.txt")
        'http://127.0.0.1:8000/gowalla/train.txt'
    """
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https", "ftp", "file") or (parts.scheme != "file" and not parts.netloc):
        raise ValueError(f"mirror must be an http(s)://, ftp:// or file:// URL, got {base_url!r}")
    path = posixpath.join(parts.path.rstrip("/") + "/", urllib.parse.quote(name), urllib.parse.quote(filename))
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# --------------------------------------------------------------------------- registry

_REGISTRY: Dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, overwrite: bool = False) -> DatasetSpec:
    """Add a dataset to the registry (also for your own data or test fixtures).

    Raises:
        ValueError: if the name is taken and ``overwrite`` is false.
    """
    if spec.name in _REGISTRY and not overwrite:
        raise ValueError(f"dataset {spec.name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_dataset(name: str) -> None:
    """Remove a dataset from the registry (no error if absent)."""
    _REGISTRY.pop(name, None)


def list_datasets() -> List[str]:
    """Names of the registered datasets, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}") from None


def default_root() -> Path:
    """The cache root: ``$GRAPHCF_DATA`` if set, else ``~/.cache/graphcf``."""
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "graphcf"


def _fmt(n: Optional[int]) -> str:
    return "?" if n is None else f"{n:,}"


def describe(name: str) -> str:
    """A human-readable summary of a dataset: source, files, format, split, counts, citation."""
    spec = get_spec(name)
    lines = [f"{spec.name}: {spec.description}"]
    if spec.source:
        lines.append(f"  source:   {spec.source}")
    lines.append(
        f"  counts:   {_fmt(spec.num_users)} users, {_fmt(spec.num_items)} items, "
        f"{_fmt(spec.num_interactions)} interactions"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in spec.split_sizes.items())})" if spec.split_sizes else "")
    )
    if spec.counts_note:
        lines.append(f"            ({spec.counts_note})")
    if spec.format:
        lines.append(f"  format:   {spec.format}")
    if spec.split:
        lines.append(f"  split:    {spec.split}")
    lines.append("  files (for local_dir=, put these names in one directory):")
    for f in spec.files:
        lines.append(f"    {f.filename}  <- {f.url}")
        lines.append(f"      sha256: {f.sha256 or 'unknown (not verified)'}")
        for m in f.members:
            lines.append(f"      member {m.path} -> {m.filename}, sha256: {m.sha256 or 'unknown (not verified)'}")
    if spec.citation:
        lines.append(f"  cite:     {spec.citation}")
    if spec.license:
        lines.append(f"  license:  {spec.license}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- download


def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _warn_unverified(label: str) -> None:
    if label not in _warned_unverified:
        _warned_unverified.add(label)
        logger.warning("no known sha256 for %s: its integrity is not verified", label)


def _tmp_path(dest: Path) -> Path:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    return Path(tmp)


def _unlink(path: Optional[Path]) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _stream(url: str, tmp: Path, progress: bool, timeout: float, size: Optional[int]) -> Tuple[str, int]:
    """Write ``url`` to ``tmp``; return (sha256, bytes)."""
    from tqdm.auto import tqdm

    from graphcf import __version__

    req = urllib.request.Request(url, headers={"User-Agent": f"graphcf/{__version__}"})
    h = hashlib.sha256()
    n = 0
    with urllib.request.urlopen(req, timeout=timeout) as resp, open(tmp, "wb") as out:
        length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
        total = int(length) if length and length.isdigit() else size
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=posixpath.basename(urllib.parse.urlsplit(url).path) or url, disable=not progress,
                  leave=False) as bar:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
        if length and length.isdigit() and n != int(length):
            raise http.client.IncompleteRead(b"", int(length) - n)
    return h.hexdigest(), n


def download(
    url: str,
    dest: PathLike,
    sha256: Optional[str] = None,
    progress: bool = False,
    timeout: float = 30.0,
    retries: int = 2,
    size: Optional[int] = None,
) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its sha256.

    The bytes are streamed into a temporary file next to ``dest`` (hashing on the
    fly, with a tqdm bar when ``progress``), checked, then moved into place with
    ``os.replace``: ``dest`` is either absent/unchanged or the complete, verified
    file, never a partial one.

    Args:
        url: what to fetch (``http(s)://``, ``ftp://`` or ``file://``).
        dest: the final path; its directory is created.
        sha256: expected hex digest; ``None`` skips verification (a warning is logged once).
        progress: show a progress bar on stderr.
        timeout: socket timeout in seconds (connect and each read).
        retries: further attempts after a network failure (not after HTTP 4xx or
            a checksum mismatch), with a short exponential backoff.
        size: expected size in bytes, if known.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: the file could not be fetched (names the URL and the reason).
        ChecksumError: the bytes do not match ``sha256`` or ``size``; nothing is kept.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    while True:
        tmp = _tmp_path(dest)
        try:
            logger.info("downloading %s -> %s", url, dest)
            digest, nbytes = _stream(url, tmp, progress, timeout, size)
            if sha256 is not None and digest != sha256.lower():
                raise ChecksumError(dest, url, sha256.lower(), digest,
                                    hint="The file was deleted; the upstream file may have changed or the "
                                         "transfer was corrupted")
            if size is not None and nbytes != size:
                raise ChecksumError(dest, url, f"{size} bytes", f"{nbytes} bytes", hint="The file was deleted")
            if sha256 is None:
                _warn_unverified(str(dest))
            os.replace(tmp, dest)
            tmp = None
            return dest
        except urllib.error.HTTPError as e:
            # 4xx will not change on retry; 5xx may
            err: Optional[BaseException] = e
            reason = f"HTTP {e.code} {e.reason}"
            fatal = 400 <= e.code < 500
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            err = e
            r = getattr(e, "reason", None)
            reason = f"{type(r).__name__ if isinstance(r, BaseException) else type(e).__name__}: {r or e}"
            fatal = False
        finally:
            _unlink(tmp)
        if fatal or attempt >= retries:
            raise DownloadError(url, reason) from err
        attempt += 1
        wait = 0.25 * 2 ** (attempt - 1)
        logger.warning("download of %s failed (%s); retry %d/%d in %.2fs", url, reason, attempt, retries, wait)
        time.sleep(wait)


# --------------------------------------------------------------------------- files on disk


def _verify_local(path: Path, sha256: Optional[str], url: Optional[str], hint: str) -> None:
    if sha256 is None:
        _warn_unverified(str(path))
        return
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise ChecksumError(path, url, sha256.lower(), actual, hint=hint)



def _write_member(src: IO[bytes], dest: Path, sha256: Optional[str], verify: bool, hint: str) -> None:
    """Stream an archive member to ``dest`` atomically, verifying its sha256 when known."""
    tmp: Optional[Path] = _tmp_path(dest)
    try:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:  # type: ignore[arg-type]
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                out.write(chunk)
                h.update(chunk)
        if verify and sha256 is not None and h.hexdigest() != sha256.lower():
            raise ChecksumError(dest, None, sha256.lower(), h.hexdigest(), hint=hint)
        if sha256 is None:
            _warn_unverified(str(dest))
        os.replace(tmp, dest)  # type: ignore[arg-type]
        tmp = None
    finally:
        _unlink(tmp)


def _iter_members(archive: Path, members: Sequence[ArchiveMember]) -> Iterator[Tuple[ArchiveMember, IO[bytes]]]:
    """Open each requested member of a zip / tar archive in turn."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                names = set(zf.namelist())
                for m in members:
                    if m.path not in names:
                        raise DatasetError(
                            f"archive {archive} has no member {m.path!r} (it has e.g. {sorted(names)[:8]})"
                        )
                    with zf.open(m.path) as src:
                        yield m, src
        else:
            with tarfile.open(archive, "r:*") as tf:
                for m in members:
                    try:
                        info = tf.getmember(m.path)
                    except KeyError:
                        raise DatasetError(
                            f"archive {archive} has no member {m.path!r} (it has e.g. {tf.getnames()[:8]})"
                        ) from None
                    src = tf.extractfile(info) if info.isfile() else None
                    if src is None:
                        raise DatasetError(f"archive {archive}: member {m.path!r} is not a regular file")
                    with src:
                        yield m, src
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as e:
        raise DatasetError(f"{archive} is not a readable archive ({e}); delete it and try again") from e


def _extract(archive: Path, f: RemoteFile, dest_dir: Path, verify: bool) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    for m, src in _iter_members(archive, f.members):
        logger.info("extracting %s:%s -> %s", archive.name, m.path, dest_dir / m.filename)
        _write_member(src, dest_dir / m.filename, m.sha256, verify,
                      hint=f"extracted from {archive} (member {m.path}); the archive differs from the expected one")


def _cached_ok(path: Path, sha256: Optional[str], verify: bool, url: str, refetch: bool) -> bool:
    """Is ``path`` a usable cached file? A corrupt one is deleted (``refetch``) or raises."""
    if not path.is_file():
        return False
    if not verify:
        return True
    if sha256 is None:
        _warn_unverified(str(path))
        return True
    actual = sha256_file(path)
    if actual == sha256.lower():
        return True
    if not refetch:
        raise ChecksumError(path, None, sha256.lower(), actual,
                            hint=f"the cached file is corrupt or outdated; delete it or allow download={True}")
    logger.warning("cached %s has sha256 %s, expected %s: fetching it again from %s", path, actual, sha256, url)
    path.unlink()
    return False


def _missing_error(spec: DatasetSpec, path: Path, where: str, hint: str) -> FileNotFoundError:
    expected = []
    for f in spec.files:
        expected.append(f"{f.filename} (or the files extracted from it: {', '.join(f.local_names)})" if f.extract else f.filename)
    return FileNotFoundError(
        f"dataset {spec.name!r}: {path} not found; {where} must contain: {', '.join(expected)}{hint}"
    )


def _resolve_cache(
    spec: DatasetSpec, directory: Path, download: bool, progress: bool, verify: bool, timeout: float, retries: int
) -> Path:
    no_dl = " (download=False: nothing is fetched; pass download=True or local_dir=)"
    for f in spec.files:
        if f.extract:
            if all(_cached_ok(directory / m.filename, m.sha256, verify, f.url, refetch=True) for m in f.members):
                continue
        target = directory / f.filename
        if not _cached_ok(target, f.sha256, verify, f.url, refetch=download):
            if not download:
                raise _missing_error(spec, target, f"the cache directory {directory}", no_dl)
            _download_file(f.url, target, sha256=f.sha256 if verify else None, progress=progress,
                           timeout=timeout, retries=retries, size=f.size)
        if f.extract:
            _extract(target, f, directory, verify)
    return directory


def _resolve_local(spec: DatasetSpec, local_dir: Path, cache_dir: Path, verify: bool) -> Path:
    if not local_dir.is_dir():
        raise _missing_error(spec, local_dir, "local_dir (a directory)", "")
    hint = "the local copy differs from the published file (pass verify=False to use it anyway)"
    to_extract: List[RemoteFile] = []
    for f in spec.files:
        if f.extract:
            if all((local_dir / m.filename).is_file() for m in f.members):
                if verify:
                    for m in f.members:
                        _verify_local(local_dir / m.filename, m.sha256, None, hint)
                continue
            archive = local_dir / f.filename
            if not archive.is_file():
                absent = next(local_dir / m.filename for m in f.members if not (local_dir / m.filename).is_file())
                raise _missing_error(spec, absent, f"local_dir {local_dir}", "")
            if verify:
                _verify_local(archive, f.sha256, None, hint)
            to_extract.append(f)
        else:
            path = local_dir / f.filename
            if not path.is_file():
                raise _missing_error(spec, path, f"local_dir {local_dir}", "")
            if verify:
                _verify_local(path, f.sha256, None, hint)
    if not to_extract:
        return local_dir
    # archives found instead of their members: extract into the cache and read everything from there
    cache_dir.mkdir(parents=True, exist_ok=True)
    for f in to_extract:
        _extract(local_dir / f.filename, f, cache_dir, verify)
    for f in spec.files:
        if f not in to_extract:
            for n in f.local_names:
                tmp = _tmp_path(cache_dir / n)
                try:
                    shutil.copyfile(local_dir / n, tmp)
                    os.replace(tmp, cache_dir / n)
                finally:
                    _unlink(tmp if tmp.exists() else None)
    return cache_dir


def fetch_dataset(
    name: str,
    root: Optional[PathLike] = None,
    local_dir: Optional[PathLike] = None,
    download: bool = True,
    progress: bool = False,
    verify: bool = True,
    mirror: Optional[str] = None,
    timeout: float = 30.0,
    retries: int = 2,
) -> Path:
    """Make sure a dataset's files are available; return the directory holding them.

    Same arguments as :func:`load_dataset`; nothing is parsed. Useful to pre-fill a
    cache (or a mirror) ahead of time.
    """
    spec = get_spec(name)
    root_dir = Path(root).expanduser() if root is not None else default_root()
    cache_dir = root_dir / spec.name
    if local_dir is not None:
        return _resolve_local(spec, Path(local_dir).expanduser(), cache_dir, verify)
    mirror = mirror if mirror is not None else (os.environ.get(ENV_MIRROR) or None)
    if mirror:
        spec = spec.with_mirror(mirror)
    return _resolve_cache(spec, cache_dir, download, progress, verify, timeout, retries)


def load_dataset(
    name: str,
    root: Optional[PathLike] = None,
    local_dir: Optional[PathLike] = None,
    download: bool = True,
    progress: bool = False,
    verify: bool = True,
    mirror: Optional[str] = None,
    timeout: float = 30.0,
    retries: int = 2,
) -> Tuple[HeteroData, IdMap]:
    """Load a registered dataset as ``(HeteroData, IdMap)``.

    Args:
        name: a name from :func:`list_datasets`.
        root: cache root (default :func:`default_root`); files go to ``<root>/<name>/``.
        local_dir: read the files from this directory instead (no network). It must
            hold the file names shown by :func:`describe` (for an archive, either the
            archive or the extracted members).
        download: fetch files missing from the cache; with ``False`` a missing file
            raises ``FileNotFoundError``.
        progress: show download progress bars.
        verify: check sha256 checksums where known (downloads, cache and local files).
        mirror: base URL of a mirror: files are fetched from
            ``<mirror>/<name>/<filename>`` (the cache layout). Defaults to
            ``$GRAPHCF_MIRROR``; ignored with ``local_dir``.
        timeout: socket timeout of each download, in seconds.
        retries: retries of a download after a network failure.

    Returns:
        The graph (train edges for message passing, ``val``/``test`` held out, see
        :func:`graphcf.data.to_heterodata`) and the raw-id map.

    Raises:
        ValueError: unknown ``name`` (the message lists the known ones).
        FileNotFoundError: a file is missing from ``local_dir`` (or from the cache
            with ``download=False``); names the path and the expected files.
        DownloadError: a file could not be downloaded.
        ChecksumError: a file does not match its known sha256.
    """
    spec = get_spec(name)
    directory = fetch_dataset(name, root=root, local_dir=local_dir, download=download, progress=progress,
                              verify=verify, mirror=mirror, timeout=timeout, retries=retries)
    logger.info("loading dataset %s from %s", name, directory)
    data, idmap = spec.loader(directory)
    _check_counts(spec, data)
    return data, idmap


def _check_counts(spec: DatasetSpec, data: HeteroData) -> None:
    """Log the loaded counts; warn where they differ from the registry's."""
    from graphcf.data.build import has_split, num_users_items, split_edge_index

    nu, ni = num_users_items(data)
    sizes = {s: int(split_edge_index(data, s).shape[1]) for s in ("train", "val", "test") if has_split(data, s)}
    total = sum(sizes.values())
    logger.info("%s: %d users, %d items, %d interactions %s", spec.name, nu, ni, total, sizes)
    for what, got, want in (("users", nu, spec.num_users), ("items", ni, spec.num_items),
                            ("interactions", total, spec.num_interactions)):
        if want is not None and got != want:
            logger.warning("%s: loaded %d %s, the registry reports %d (%s)", spec.name, got, what, want,
                           spec.counts_note or "no source given")


# alias: load_dataset / fetch_dataset have a ``download`` flag that shadows the function
_download_file = download


# --------------------------------------------------------------------------- loaders
# Imported lazily: the readers / loaders / splitters are only needed when a dataset is read.


def load_lightgcn(directory: Path) -> Tuple[HeteroData, IdMap]:
    """LightGCN/NGCF ``train.txt`` + ``test.txt`` (``USER ITEM ITEM ...`` lines)."""
    from graphcf.data.loaders import load_lightgcn_dir

    return load_lightgcn_dir(directory, unseen="keep")


def load_triples(directory: Path) -> Tuple[HeteroData, IdMap]:
    """SELFRec / LightGCN++ ``train.txt``, ``valid.txt``, ``test.txt`` (``USER ITEM 1`` lines)."""
    from graphcf.data.loaders import load_triples_dir

    return load_triples_dir(directory, unseen="keep")


class NCFLoader:
    """NCF files ``<prefix>.train.rating``, ``.test.rating``, ``.test.negative`` in a directory."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, directory: Path) -> Tuple[HeteroData, IdMap]:
        from graphcf.data.loaders import load_ncf

        return load_ncf(Path(directory) / self.prefix)

    def __repr__(self) -> str:
        return f"NCFLoader({self.prefix!r})"


class MovieLensLOOLoader:
    """Raw MovieLens ratings -> temporal leave-one-out (val and test) with a fixed seed.

    Every rating counts as one implicit interaction (the NCF convention); the rating
    value is dropped so that it does not become an edge weight, the timestamp is kept.
    """

    def __init__(self, filename: str, seed: int = 0) -> None:
        self.filename = filename
        self.seed = seed

    def __call__(self, directory: Path) -> Tuple[HeteroData, IdMap]:
        import torch

        from graphcf.data.build import to_heterodata
        from graphcf.data.interactions import encode
        from graphcf.data.readers import read_movielens
        from graphcf.data.split import leave_one_out

        raw = read_movielens(Path(directory) / self.filename)
        raw = replace(raw, rating=None)
        splits, idmap = encode({"all": raw})
        parts = leave_one_out(splits["all"], with_val=True, generator=torch.Generator().manual_seed(self.seed))
        return to_heterodata(parts), idmap

    def __repr__(self) -> str:
        return f"MovieLensLOOLoader({self.filename!r}, seed={self.seed})"


# --------------------------------------------------------------------------- built-in datasets


def _gh(repo: str, ref: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{ref}/{path}"


# kuandeng/LightGCN: gowalla is pinned to the commit whose files were checked (sha256 below);
# yelp2018 / amazon-book follow master (checksums unknown).
_LIGHTGCN = "kuandeng/LightGCN"
_LIGHTGCN_PINNED = "b067ec05f16a24e0e1efe63cd82385f0c469af20"
_NCF = "hexiangnan/neural_collaborative_filtering"
_LIGHTGCNPP = "geon0325/LightGCNpp"
_LIGHTGCNPP_REF = "a394f79a7aceb8f485f6bcb549b4865fe83f1d49"

_CITE_LIGHTGCN = (
    "X. He, K. Deng, X. Wang, Y. Li, Y. Zhang, M. Wang. LightGCN: Simplifying and Powering Graph "
    "Convolution Network for Recommendation. SIGIR 2020 (splits from X. Wang et al., Neural Graph "
    "Collaborative Filtering, SIGIR 2019)"
)
_CITE_NCF = "X. He, L. Liao, H. Zhang, L. Nie, X. Hu, T.-S. Chua. Neural Collaborative Filtering. WWW 2017"
_CITE_ML = "F. M. Harper, J. A. Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015"
_CITE_LIGHTGCNPP = (
    "G. Lee, K. Kim, K. Shin. Revisiting LightGCN: Unexpected Inflexibility, Inconsistency, and A Remedy "
    "Towards Improved Recommendation. RecSys 2024"
)
_ML_LICENSE = (
    "GroupLens terms: research use; no redistribution without permission; no commercial use; cite "
    "Harper & Konstan 2015"
)
_LOO = ("temporal leave-one-out: per user the latest interaction (by timestamp) is test, the second latest "
        "val, the rest train; ties in time broken with seed 0")


def _lightgcn_spec(name: str, ref: str, hashes: Mapping[str, Tuple[Optional[str], Optional[int]]], **kw) -> DatasetSpec:
    files = tuple(
        RemoteFile(_gh(_LIGHTGCN, ref, f"Data/{name}/{fn}"), fn, sha256=hashes.get(fn, (None, None))[0],
                   size=hashes.get(fn, (None, None))[1])
        for fn in ("train.txt", "test.txt")
    )
    return DatasetSpec(
        name=name, files=files, loader=load_lightgcn, format="LightGCN (one line per user: USER ITEM ITEM ...)",
        split="the published LightGCN/NGCF train/test split (80/20 per user); no validation split",
        citation=_CITE_LIGHTGCN, source=f"https://github.com/{_LIGHTGCN}/tree/{ref}/Data/{name}", **kw,
    )


def _selfrec_spec(name: str, hashes: Mapping[str, Tuple[str, int]], **kw) -> DatasetSpec:
    files = tuple(
        RemoteFile(_gh(_LIGHTGCNPP, _LIGHTGCNPP_REF, f"SELFRec/dataset/{name}/{fn}"), fn,
                   sha256=hashes[fn][0], size=hashes[fn][1])
        for fn in ("train.txt", "valid.txt", "test.txt")
    )
    return DatasetSpec(
        name=name, files=files, loader=load_triples, format="triples (one line per interaction: USER ITEM 1)",
        split="the published LightGCN++ train/valid/test split; select on val, report on test",
        citation=_CITE_LIGHTGCNPP,
        source=f"https://github.com/{_LIGHTGCNPP}/tree/{_LIGHTGCNPP_REF}/SELFRec/dataset/{name}", **kw,
    )


def _ncf_spec(name: str, prefix: str, **kw) -> DatasetSpec:
    files = tuple(
        RemoteFile(_gh(_NCF, "master", f"Data/{prefix}{suffix}"), f"{prefix}{suffix}")
        for suffix in (".train.rating", ".test.rating", ".test.negative")
    )
    return DatasetSpec(
        name=name, files=files, loader=NCFLoader(prefix),
        format="NCF (.train.rating / .test.rating: USER\\tITEM\\tRATING\\tTIME; .test.negative: 99 sampled negatives)",
        split="the published NCF leave-one-out split: the latest interaction per user is test, ranked "
              "against the 99 given negatives (HR@10 / NDCG@10)",
        citation=_CITE_NCF, source=f"https://github.com/{_NCF}/tree/master/Data", **kw,
    )


_BUILTIN: Tuple[DatasetSpec, ...] = (
    _lightgcn_spec(
        "gowalla", _LIGHTGCN_PINNED,
        {"train.txt": ("7244696fdeb23911319cf7b689f2e15a3c4c92549c873a5677b44e3f13cc3e62", 4633414),
         "test.txt": ("099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3", 1372559)},
        description="Gowalla check-ins (location-based social network), 10-core, implicit feedback",
        num_users=29858, num_items=40981, num_interactions=1027370,
        split_sizes={"train": 810128, "test": 217242},
        counts_note="verified on the files; matches the LightGCN paper",
    ),
    _lightgcn_spec(
        "yelp2018", "master", {},
        description="Yelp 2018 challenge reviews as implicit feedback, 10-core",
        num_users=31668, num_items=38048, num_interactions=1561406,
        counts_note="reported in the LightGCN paper; files not verified (sha256 unknown)",
    ),
    _lightgcn_spec(
        "amazon-book", "master", {},
        description="Amazon book reviews (McAuley et al.) as implicit feedback, 10-core",
        num_users=52643, num_items=91599, num_interactions=2984108,
        counts_note="reported in the LightGCN paper; files not verified (sha256 unknown)",
    ),
    DatasetSpec(
        name="ml-100k",
        description="MovieLens 100K ratings (1-5 stars, with timestamps) used as implicit feedback",
        files=(RemoteFile(
            "https://files.grouplens.org/datasets/movielens/ml-100k.zip", "ml-100k.zip", sha256=None,
            extract=True,
            members=(ArchiveMember("ml-100k/u.data", "u.data",
                                   sha256="06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),),
        ),),
        loader=MovieLensLOOLoader("u.data", seed=0),
        format="MovieLens u.data (USER\\tITEM\\tRATING\\tTIMESTAMP); ratings dropped, every rating is one interaction",
        split=_LOO,
        citation=_CITE_ML, source="https://grouplens.org/datasets/movielens/100k/", license=_ML_LICENSE,
        num_users=943, num_items=1682, num_interactions=100000,
        split_sizes={"train": 98114, "val": 943, "test": 943},
        counts_note="verified on u.data (the zip's own checksum is unknown; its u.data member is verified)",
    ),
    DatasetSpec(
        name="ml-1m",
        description="MovieLens 1M ratings (1-5 stars, with timestamps) used as implicit feedback",
        files=(RemoteFile(
            "https://files.grouplens.org/datasets/movielens/ml-1m.zip", "ml-1m.zip", sha256=None, extract=True,
            members=(ArchiveMember("ml-1m/ratings.dat", "ratings.dat", sha256=None),),
        ),),
        loader=MovieLensLOOLoader("ratings.dat", seed=0),
        format="MovieLens ratings.dat (USER::ITEM::RATING::TIMESTAMP); ratings dropped, every rating is one interaction",
        split=_LOO,
        citation=_CITE_ML, source="https://grouplens.org/datasets/movielens/1m/", license=_ML_LICENSE,
        num_users=6040, num_items=3706, num_interactions=1000209,
        counts_note="reported by GroupLens (6,040 users, 1,000,209 ratings) and the NCF paper (3,706 rated "
                    "items); files not verified (sha256 unknown)",
    ),
    _ncf_spec(
        "ml-1m-ncf", "ml-1m",
        description="MovieLens 1M as preprocessed by NCF (every user has >= 20 ratings)",
        num_users=6040, num_items=3706, num_interactions=1000209,
        counts_note="reported in the NCF paper; files not verified (sha256 unknown)",
    ),
    _ncf_spec(
        "pinterest-20-ncf", "pinterest-20",
        description="Pinterest pins as preprocessed by NCF (users with >= 20 interactions)",
        num_users=55187, num_items=9916, num_interactions=1500809,
        counts_note="reported in the NCF paper; files not verified (sha256 unknown)",
    ),
    _selfrec_spec(
        "citeulike",
        {"train.txt": ("c2e748352773ace972336efdd55f5c3e9d838bd252b86e3e77fb112ca5f71755", 1813494),
         "valid.txt": ("6648f654450854857967e1251b8322741e5279e94e62e7be5d816774599ed80a", 224398),
         "test.txt": ("c7eb14f9d808d64ba633aefceb7571790d3e5490462e5413cf93055ca77d1904", 477845)},
        description="CiteULike user-article bookmarks (small graph benchmark with a validation split)",
        num_users=5551, num_items=16980, num_interactions=210528,
        split_sizes={"train": 151918, "val": 18727, "test": 39883},
        counts_note="verified on the files",
    ),
    _selfrec_spec(
        "amazon-beauty",
        {"train.txt": ("42f5083f9e435e32b02736c9feeb69802a0fe2b8bc077ef6d0852153249394ef", 3741408),
         "valid.txt": ("f8000334575dfa32aa88e95542e059c05bb27b623a7e59670c9e745686aea526", 388493),
         "test.txt": ("14c7f464e5f5fbc307bed3ef1e2538acff4410d551d82aa0bf35b89d63a93745", 1058078)},
        description="Amazon Beauty reviews as implicit feedback (graph benchmark with a validation split)",
        num_users=52204, num_items=57289, num_interactions=394908,
        split_sizes={"train": 284530, "val": 29796, "test": 80582},
        counts_note="verified on the files",
    ),
)

for _spec in _BUILTIN:
    register_dataset(_spec)
del _spec
