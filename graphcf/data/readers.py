"""Readers for public interaction file formats, each returning :class:`RawInteractions`.

Supported formats:

* LightGCN / NGCF ``train.txt`` / ``test.txt``: one line per user, ``USER ITEM ITEM ...``
  (:func:`read_lightgcn`).
* LightGCN++ / SELFRec triples ``USER ITEM 1`` (:func:`read_triples`).
* NCF ``.train.rating`` / ``.test.rating`` (:func:`read_ncf_rating`) and ``.test.negative``
  (:func:`read_ncf_negative`).
* MovieLens ``u.data`` / ``ratings.dat`` / ``ratings.csv`` (:func:`read_movielens`).
* Any delimited file with integer or string ids (:func:`read_delimited`).

The whitespace / numeric formats are parsed with vectorised numpy code on the whole file
content (Gowalla's 4.6 MB ``train.txt`` reads in well under a second). Nothing is dropped
silently: every malformed token raises :class:`ReaderError` naming the file, the 1-based
line number, the offending token and what was expected.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from graphcf.data.interactions import RawInteractions

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
Column = Union[int, str]

__all__ = [
    "ReaderError",
    "read_lightgcn",
    "read_triples",
    "read_ncf_rating",
    "read_ncf_negative",
    "read_movielens",
    "read_delimited",
]


class ReaderError(ValueError):
    """A malformed input file.

    The message names the file, the 1-based line number (when the problem is on one
    line), the offending token and what was expected, e.g.
    ``"data/train.txt, line 7: non-integer item id: got 'x1', expected a non-negative decimal integer"``.

    Attributes:
        path: the file.
        line: the 1-based line number, or ``None`` for whole-file problems (e.g. an empty file).
        token: the offending token (``str``), or ``None``.
        expected: what was expected instead, or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Optional[str] = None,
        line: Optional[int] = None,
        token: Optional[str] = None,
        expected: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.token = token
        self.expected = expected

    def __reduce__(self) -> Any:  # keep the attributes through pickling (e.g. worker processes)
        return (self.__class__, (str(self),), dict(self.__dict__))

    @classmethod
    def at(
        cls,
        path: PathLike,
        line: Optional[int],
        problem: str,
        token: Any = None,
        expected: Optional[str] = None,
    ) -> "ReaderError":
        """Build an error with the standard message ``"{path}, line {line}: {problem}: got {token!r}, expected {expected}"``."""
        path = str(path)
        where = path if line is None else f"{path}, line {int(line)}"
        msg = f"{where}: {problem}"
        tok: Optional[str] = None
        if token is not None:
            tok = _show(token)
            msg += f": got {tok!r}"
        if expected:
            msg += f", expected {expected}"
        return cls(msg, path=path, line=None if line is None else int(line), token=tok, expected=expected)


def _show(token: Any, limit: int = 60) -> str:
    if isinstance(token, (bytes, bytearray, np.bytes_)):
        token = bytes(token).decode("utf-8", errors="replace")
    token = str(token)
    return token if len(token) <= limit else token[:limit] + "..."


# --------------------------------------------------------------------------------------------
# Vectorised tokenizer for whitespace-separated numeric files
# --------------------------------------------------------------------------------------------

_MAX_DIGITS = 18  # every 18-digit decimal fits in int64
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_CHUNK = 1 << 22  # bytes per tokenizer chunk (bounds the per-byte temporaries, keeps them in cache)

_NONNEG_INT = "a non-negative decimal integer"


def _read_bytes(path: PathLike) -> bytes:
    with open(path, "rb") as f:
        content = f.read()
    if content.startswith(b"\xef\xbb\xbf"):
        content = b"   " + content[3:]  # blank the UTF-8 BOM, keep byte offsets
    return content


class _Tokens:
    """Whitespace tokens of a byte buffer with their lines and (where valid) integer values.

    Attributes:
        buf: the (possibly separator-blanked) ``uint8`` buffer.
        nl: positions of ``\\n`` bytes.
        nlines: number of lines.
        start, end: ``[T]`` byte span of each token.
        line: ``[T]`` 0-based line of each token.
        counts: ``[nlines]`` tokens per line.
        first: ``[nlines]`` index of the first token of each line.
        is_uint: ``[T]`` token is a decimal integer of at most 18 digits.
        value: ``[T]`` its value (meaningless where ``is_uint`` is false).
    """

    def __init__(self, buf: np.ndarray) -> None:
        self.buf = buf
        n = len(buf)
        self.nl = np.flatnonzero(buf == 10)
        self.nlines = len(self.nl) + (1 if n and (len(self.nl) == 0 or self.nl[-1] != n - 1) else 0)
        starts: List[np.ndarray] = []
        ends: List[np.ndarray] = []
        oks: List[np.ndarray] = []
        vals: List[np.ndarray] = []
        a = 0
        while a < n:
            b = min(a + _CHUNK, n)
            if b < n:  # cut after a newline so no token straddles two chunks
                k = np.searchsorted(self.nl, b)
                b = int(self.nl[k]) + 1 if k < len(self.nl) else n
            s, e, ok, v = self._chunk(buf[a:b])
            starts.append(s + a)
            ends.append(e + a)
            oks.append(ok)
            vals.append(v)
            a = b
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dtype=dt)  # noqa: E731
        self.start = cat(starts, np.int64)
        self.end = cat(ends, np.int64)
        self.is_uint = cat(oks, bool)
        self.value = cat(vals, np.int64)
        self.line = np.searchsorted(self.nl, self.start).astype(np.int64)
        self.counts = np.bincount(self.line, minlength=self.nlines)
        self.first = np.cumsum(self.counts) - self.counts

    @staticmethod
    def _chunk(sub: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        # blanks are exactly the bytes bytes.split() splits on: 9..13 and 32
        p = np.flatnonzero((sub != 32) & ((sub < 9) | (sub > 13)))
        if len(p) == 0:
            z = np.zeros(0, dtype=np.int64)
            return z, z, np.zeros(0, dtype=bool), z
        brk = np.flatnonzero(np.diff(p) != 1)
        first = np.empty(len(brk) + 1, dtype=np.int64)  # index into p of each token's first byte
        first[0] = 0
        first[1:] = brk + 1
        last = np.empty_like(first)
        last[:-1] = brk
        last[-1] = len(p) - 1
        s = p[first]
        e = p[last] + 1
        lengths = last - first + 1
        dig = sub[p] - np.uint8(48)  # wraps around for bytes below '0'
        isd = dig < 10
        ndig = np.add.reduceat(isd, first, dtype=np.int64)
        exps = np.repeat(e - 1, lengths) - p
        np.minimum(exps, _MAX_DIGITS, out=exps)
        contrib = np.where(isd, dig, 0).astype(np.int64)
        contrib *= _POW10[exps]
        vals = np.add.reduceat(contrib, first)
        ok = (ndig == lengths) & (lengths <= _MAX_DIGITS)
        return s.astype(np.int64), e.astype(np.int64), ok, vals

    def text(self, i: int) -> bytes:
        """The bytes of token ``i``."""
        return self.buf[self.start[i] : self.end[i]].tobytes()

    def texts(self, idx: np.ndarray) -> List[bytes]:
        raw = self.buf
        return [raw[s:e].tobytes() for s, e in zip(self.start[idx].tolist(), self.end[idx].tolist())]

    def line_text(self, line0: int) -> bytes:
        """The bytes of 0-based line ``line0`` (without the newline)."""
        a = 0 if line0 == 0 else int(self.nl[line0 - 1]) + 1
        b = int(self.nl[line0]) if line0 < len(self.nl) else len(self.buf)
        return self.buf[a:b].tobytes().strip()


def _tokenize(content: bytes, path: PathLike, sep: Optional[bytes] = None) -> Tuple[_Tokens, Optional[np.ndarray]]:
    """Tokenize ``content``; with ``sep``, separators become blanks and are counted per line.

    Returns the tokens and, when ``sep`` is given, the number of separators on each line.
    """
    if sep is None:
        return _Tokens(np.frombuffer(content, dtype=np.uint8)), None
    if len(sep) == 1:
        buf = np.frombuffer(content, dtype=np.uint8).copy()
        mask = buf == sep[0]
    else:
        if b"\x00" in content:
            i = content.index(b"\x00")
            raise ReaderError.at(path, content.count(b"\n", 0, i) + 1, "unexpected NUL byte", "\\x00", "text")
        buf = np.frombuffer(content.replace(sep, b"\x00"), dtype=np.uint8).copy()
        mask = buf == 0
    pos = np.flatnonzero(mask)
    buf[pos] = ord(" ")
    tok = _Tokens(buf)
    seps = np.bincount(np.searchsorted(tok.nl, pos), minlength=tok.nlines)
    return tok, seps


def _bad_uint(tok: _Tokens, i: int, path: PathLike, what: str) -> ReaderError:
    t = tok.text(i)
    line = int(tok.line[i]) + 1
    if t.startswith(b"-") and t[1:].isdigit():
        return ReaderError.at(path, line, f"negative {what}", t, _NONNEG_INT)
    if t.isdigit():
        return ReaderError.at(path, line, f"{what} too large", t, f"at most {_MAX_DIGITS} digits")
    return ReaderError.at(path, line, f"non-integer {what}", t, _NONNEG_INT)


def _uint_col(
    tok: _Tokens, idx: np.ndarray, path: PathLike, what: str, bound: Optional[int] = None, bound_name: str = ""
) -> np.ndarray:
    """int64 values of tokens ``idx`` (non-negative integers, optionally ``< bound``)."""
    ok = tok.is_uint[idx]
    if not ok.all():
        raise _bad_uint(tok, int(idx[np.argmin(ok)]), path, what)
    vals = tok.value[idx]
    if bound is not None and len(vals):
        over = vals >= bound
        if over.any():
            i = int(idx[np.argmax(over)])
            raise ReaderError.at(
                path, int(tok.line[i]) + 1, f"{what} out of range", tok.text(i),
                f"an id below the declared {bound_name}={bound}",
            )
    return vals


def _convert_texts(
    texts: List[bytes], lines: np.ndarray, path: PathLike, what: str, dtype: Any, expected: str
) -> np.ndarray:
    """``np.array(texts).astype(dtype)``; on failure convert in Python and name the first bad token."""
    try:
        return np.array(texts).astype(dtype)
    except (ValueError, OverflowError):
        conv = int if np.dtype(dtype).kind == "i" else float
        out = np.empty(len(texts), dtype=dtype)
        for j, (t, ln) in enumerate(zip(texts, lines.tolist())):
            try:
                out[j] = conv(t)
            except (ValueError, OverflowError):
                raise ReaderError.at(path, ln, f"invalid {what}", t, expected) from None
        return out


def _float_col(tok: _Tokens, idx: np.ndarray, path: PathLike, what: str = "rating") -> np.ndarray:
    if tok.is_uint[idx].all():
        return tok.value[idx].astype(np.float64)
    lines = tok.line[idx] + 1
    vals = _convert_texts(tok.texts(idx), lines, path, what, np.float64, "a number")
    bad = ~np.isfinite(vals)
    if bad.any():
        j = int(np.argmax(bad))
        raise ReaderError.at(path, int(lines[j]), f"non-finite {what}", tok.text(int(idx[j])), "a finite number")
    return vals


def _time_col(tok: _Tokens, idx: np.ndarray, path: PathLike) -> np.ndarray:
    """int64 timestamps; negative integers are allowed, float timestamps are truncated to int."""
    if tok.is_uint[idx].all():
        return tok.value[idx]
    texts = tok.texts(idx)
    lines = tok.line[idx] + 1
    try:
        return np.array(texts).astype(np.int64)
    except (ValueError, OverflowError):
        vals = _convert_texts(texts, lines, path, "timestamp", np.float64, "an integer (or numeric) timestamp")
        bad = ~np.isfinite(vals)
        if bad.any():
            j = int(np.argmax(bad))
            raise ReaderError.at(path, int(lines[j]), "non-finite timestamp", texts[j], "a finite number")
        return vals.astype(np.int64)


def _table(
    tok: _Tokens,
    path: PathLike,
    allowed: Sequence[int],
    fmt: str,
    seps: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, int]:
    """Row layout of a fixed-column file: first token index of every non-empty line, and the column count.

    Empty lines are skipped. Every non-empty line must have the same number of columns, one of
    ``allowed``; with an explicit separator, every field must be non-empty and blank-free.
    """
    counts = tok.counts
    if seps is not None:
        fields = seps + 1
        nonempty = np.flatnonzero((counts > 0) | (seps > 0))
        badf = nonempty[counts[nonempty] != fields[nonempty]]
        if len(badf):
            ln = int(badf[0])
            raise ReaderError.at(
                path, ln + 1, "empty field or blank inside a field", tok.line_text(ln),
                f"{fields[ln]} non-empty {fmt} fields",
            )
    else:
        nonempty = np.flatnonzero(counts > 0)
    if len(nonempty) == 0:
        raise ReaderError.at(path, None, "no interactions (empty file)", None, f"lines in {fmt} format")
    ncols = int(counts[nonempty[0]])
    want = " or ".join(str(c) for c in allowed)
    if ncols not in allowed:
        ln = int(nonempty[0])
        raise ReaderError.at(
            path, ln + 1, f"wrong number of columns ({ncols})", tok.line_text(ln), f"{want} columns ({fmt})"
        )
    bad = nonempty[counts[nonempty] != ncols]
    if len(bad):
        ln = int(bad[0])
        raise ReaderError.at(
            path, ln + 1, f"wrong number of columns ({int(counts[ln])})", tok.line_text(ln),
            f"{ncols} columns like line {int(nonempty[0]) + 1} ({fmt})",
        )
    return tok.first[nonempty], ncols


def _numeric_table(
    path: PathLike,
    content: bytes,
    allowed: Sequence[int],
    fmt: str,
    sep: Optional[bytes] = None,
) -> RawInteractions:
    """Parse ``user item [rating [timestamp]]`` rows (column count from ``allowed``)."""
    tok, seps = _tokenize(content, path, sep)
    rows, ncols = _table(tok, path, allowed, fmt, seps)
    user = _uint_col(tok, rows, path, "user id")
    item = _uint_col(tok, rows + 1, path, "item id")
    rating = _float_col(tok, rows + 2, path) if ncols >= 3 else None
    ts = _time_col(tok, rows + 3, path) if ncols >= 4 else None
    return RawInteractions(user, item, rating=rating, timestamp=ts, source=str(path))


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def read_lightgcn(path: PathLike, num_users: Optional[int] = None, num_items: Optional[int] = None) -> RawInteractions:
    """Read a LightGCN / NGCF ``train.txt`` / ``test.txt`` adjacency-list file.

    Each line is ``USER ITEM ITEM ...`` separated by blanks (spaces or tabs). A line with a
    user and no items declares a user without interactions: it goes to ``extra_users``.
    Empty lines are skipped. A user on several lines gets all their items.

    Args:
        path: the file.
        num_users: declared number of users; any user id ``>= num_users`` is an error.
        num_items: declared number of items; any item id ``>= num_items`` is an error.

    Returns:
        :class:`RawInteractions` with int64 ``user`` / ``item`` (file order) and no rating.

    Raises:
        ReaderError: a non-integer, negative or out-of-range id, or no interactions at all.
    """
    tok, _ = _tokenize(_read_bytes(path), path)
    bad = np.flatnonzero(~tok.is_uint)
    if len(bad):
        i = int(bad[0])
        is_user = tok.first[tok.line[i]] == i
        raise _bad_uint(tok, i, path, "user id" if is_user else "item id")
    lines = np.flatnonzero(tok.counts > 0)
    first = tok.first[lines]
    n_items = tok.counts[lines] - 1
    users = tok.value[first]
    is_item = np.ones(len(tok.value), dtype=bool)
    is_item[first] = False
    if num_users is not None or num_items is not None:
        big = np.iinfo(np.int64).max
        bound = np.where(is_item, big if num_items is None else num_items, big if num_users is None else num_users)
        over = np.flatnonzero(tok.value >= bound)
        if len(over):  # the first out-of-range id in file order
            i = over[:1]
            if is_item[i[0]]:
                _uint_col(tok, i, path, "item id", num_items, "num_items")
            _uint_col(tok, i, path, "user id", num_users, "num_users")
    item = tok.value[is_item]
    if len(item) == 0:
        raise ReaderError.at(
            path, None, "no interactions (empty file or no line with items)", None, "lines 'USER ITEM ITEM ...'"
        )
    user = np.repeat(users, n_items)
    extra = np.unique(users[n_items == 0])
    if len(np.unique(users)) != len(users):
        logger.info("%s: some users appear on more than one line; their items are merged", path)
    return RawInteractions(user=user, item=item, source=str(path), extra_users=extra.astype(np.int64))


def read_triples(path: PathLike) -> RawInteractions:
    """Read LightGCN++ / SELFRec ``USER ITEM [WEIGHT]`` lines (blank separated, 2 or 3 columns).

    The third column, when present, becomes ``rating`` (float). All lines must have the same
    number of columns; empty lines are skipped.

    Raises:
        ReaderError: wrong column count, non-integer or negative id, non-numeric weight, empty file.
    """
    return _numeric_table(path, _read_bytes(path), (2, 3), "'USER ITEM [WEIGHT]'")


def read_ncf_rating(path: PathLike) -> RawInteractions:
    """Read an NCF ``.train.rating`` / ``.test.rating`` file: ``user\\titem\\trating\\ttimestamp``.

    Blanks of any kind separate the columns; a file with only 3 columns (no timestamp) is accepted.

    Raises:
        ReaderError: wrong column count, non-integer or negative id, bad rating / timestamp, empty file.
    """
    return _numeric_table(path, _read_bytes(path), (4, 3), "'user item rating timestamp'")


_PAIR = re.compile(rb"\(\s*([^,()\s]*)\s*,\s*([^,()\s]*)\s*\)")
_PAIR_STRICT = re.compile(rb"\((\d+),(\d+)\)")


def _read_ncf_negative(path: PathLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`read_ncf_negative` and also the 1-based line number of each row."""
    content = _PAIR.sub(rb"(\1,\2)", _read_bytes(path))  # "(0, 25)" -> "(0,25)"; line structure kept
    tok, _ = _tokenize(content, path)
    lines = np.flatnonzero(tok.counts > 0)
    if len(lines) == 0:
        raise ReaderError.at(path, None, "no rows (empty file)", None, "lines '(user,item)\\tneg1\\tneg2 ...'")
    first = tok.first[lines]
    users = np.empty(len(lines), dtype=np.int64)
    items = np.empty(len(lines), dtype=np.int64)
    for r, t in enumerate(tok.texts(first)):
        m = _PAIR_STRICT.fullmatch(t)
        if m is None or len(m.group(1)) > _MAX_DIGITS or len(m.group(2)) > _MAX_DIGITS:
            raise ReaderError.at(
                path, int(lines[r]) + 1, "malformed (user,item) pair", t,
                "'(USER,ITEM)' with non-negative integer ids as the first field",
            )
        users[r] = int(m.group(1))
        items[r] = int(m.group(2))
    k = int(tok.counts[lines[0]]) - 1
    if k < 1:
        raise ReaderError.at(path, int(lines[0]) + 1, "no negative items", tok.line_text(int(lines[0])),
                             "'(user,item)' followed by at least one negative item")
    bad = lines[tok.counts[lines] != k + 1]
    if len(bad):
        ln = int(bad[0])
        raise ReaderError.at(
            path, ln + 1, f"unequal number of negatives ({int(tok.counts[ln]) - 1})", tok.line_text(ln),
            f"{k} negatives like line {int(lines[0]) + 1}",
        )
    neg_idx = first[:, None] + np.arange(1, k + 1)[None, :]
    negs = _uint_col(tok, neg_idx.ravel(), path, "negative item id").reshape(len(lines), k)
    return users, items, negs, lines + 1


def read_ncf_negative(path: PathLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read an NCF ``.test.negative`` file: lines ``(u,i)\\tneg1\\tneg2 ...``.

    Returns:
        ``(users [n], items [n], negatives [n, K])``, all int64 raw ids, in file order
        (empty lines skipped).

    Raises:
        ReaderError: a malformed ``(u,i)`` field, a non-integer / negative negative item id,
            lines with different numbers of negatives, an empty file.
    """
    users, items, negs, _ = _read_ncf_negative(path)
    return users, items, negs


def read_movielens(path: PathLike) -> RawInteractions:
    """Read MovieLens ratings, detecting the flavour from the first non-empty line.

    * ``u.data`` (ML-100K): ``user\\titem\\trating\\ttimestamp`` (blank separated).
    * ``ratings.dat`` (ML-1M / ML-10M): ``user::item::rating::timestamp``.
    * ``ratings.csv`` (ML-20M / ml-latest): ``userId,movieId,rating,timestamp`` with a header line.

    Returns:
        :class:`RawInteractions` with int64 ids, float ``rating`` and int64 ``timestamp``.

    Raises:
        ReaderError: wrong column count, empty field, non-integer / negative id, bad rating, empty file.
    """
    content = _read_bytes(path)
    stripped = content.lstrip()
    first_line = stripped.split(b"\n", 1)[0]
    if b"::" in first_line:
        return _numeric_table(path, content, (4, 3), "'user::item::rating::timestamp'", sep=b"::")
    if b"," in first_line:
        if re.search(rb"[A-Za-z]", first_line):  # header: blank it out, keep line numbers
            a = len(content) - len(stripped)
            content = content[:a] + b" " * len(first_line) + content[a + len(first_line):]
        return _numeric_table(path, content, (4, 3), "'user,item,rating,timestamp'", sep=b",")
    return _numeric_table(path, content, (4, 3), "'user\\titem\\trating\\ttimestamp'")


# --------------------------------------------------------------------------------------------
# Generic delimited reader (string or integer ids)
# --------------------------------------------------------------------------------------------

_CANON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")


def _iter_rows(path: PathLike, text: str, sep: Optional[str]) -> List[Tuple[int, List[str]]]:
    """``(1-based line, fields)`` of every non-empty record."""
    rows: List[Tuple[int, List[str]]] = []
    if sep is not None and len(sep) == 1:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        line_start = 1
        try:
            for rec in reader:
                if rec and any(f.strip() for f in rec):
                    rows.append((line_start, [f.strip() for f in rec]))
                line_start = reader.line_num + 1
        except csv.Error as e:
            raise ReaderError.at(path, reader.line_num, f"CSV syntax error ({e})", None, "valid CSV") from None
        return rows
    for ln, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split() if sep is None else [f.strip() for f in line.split(sep)]
        rows.append((ln, fields))
    return rows


def _id_column(vals: List[str], lines: np.ndarray, path: PathLike, what: str, ids: str) -> np.ndarray:
    if ids == "str":
        return np.array(vals, dtype=str)
    is_int = [bool(_CANON_INT.fullmatch(v)) and len(v.lstrip("-")) <= _MAX_DIGITS for v in vals]
    if ids == "auto" and not all(is_int):
        return np.array(vals, dtype=str)
    if not all(is_int):
        j = is_int.index(False)
        raise ReaderError.at(path, int(lines[j]), f"non-integer {what}", vals[j], _NONNEG_INT)
    out = np.array([int(v) for v in vals], dtype=np.int64)
    neg = out < 0
    if neg.any():
        j = int(np.argmax(neg))
        raise ReaderError.at(path, int(lines[j]), f"negative {what}", vals[j], _NONNEG_INT)
    return out


def _float_values(vals: List[str], lines: np.ndarray, path: PathLike, what: str) -> np.ndarray:
    out = np.empty(len(vals), dtype=np.float64)
    for j, v in enumerate(vals):
        try:
            out[j] = float(v)
        except ValueError:
            raise ReaderError.at(path, int(lines[j]), f"invalid {what}", v, "a number") from None
    bad = ~np.isfinite(out)
    if bad.any():
        j = int(np.argmax(bad))
        raise ReaderError.at(path, int(lines[j]), f"non-finite {what}", vals[j], "a finite number")
    return out


def _time_values(vals: List[str], lines: np.ndarray, path: PathLike) -> np.ndarray:
    out = np.empty(len(vals), dtype=np.int64)
    for j, v in enumerate(vals):
        try:
            out[j] = int(v)
            continue
        except ValueError:
            pass
        try:
            f = float(v)
            if np.isfinite(f):
                out[j] = int(f)
                continue
        except ValueError:
            pass
        try:
            out[j] = int(np.datetime64(v.replace(" ", "T").rstrip("Z"), "s").astype(np.int64))
        except ValueError:
            raise ReaderError.at(
                path, int(lines[j]), "invalid timestamp", v, "an integer, a number or an ISO-8601 date-time"
            ) from None
    return out


def read_delimited(
    path: PathLike,
    user_col: Column,
    item_col: Column,
    rating_col: Optional[Column] = None,
    time_col: Optional[Column] = None,
    sep: Optional[str] = ",",
    header: bool = True,
    *,
    ids: str = "auto",
    encoding: str = "utf-8-sig",
) -> RawInteractions:
    """Read a generic delimited file with one interaction per row.

    Args:
        path: the file.
        user_col: the user column, by header name (needs ``header=True``) or 0-based position.
        item_col: the item column (name or position).
        rating_col: optional rating / weight column -> ``rating`` (float).
        time_col: optional timestamp column -> ``timestamp`` (int64). Integers, numbers
            (truncated) and ISO-8601 date-times (seconds since the epoch, UTC) are accepted.
        sep: the field separator. A one-character separator is read with :mod:`csv` (so
            quoted fields work); a longer one (e.g. ``"::"``) splits literally; ``None``
            splits on runs of blanks.
        header: whether the first non-empty line names the columns.
        ids: ``"auto"`` (default): a column whose values are all canonical decimal integers
            (no sign, no leading zeros) becomes int64, any other becomes a ``str`` array (so
            ids like ``"0000031852"`` keep their spelling); ``"int"``: integers required;
            ``"str"``: always strings.
        encoding: text encoding of the file.

    Returns:
        :class:`RawInteractions` in file order (empty lines skipped).

    Raises:
        ReaderError: unknown column name, a row with the wrong number of fields, a negative or
            (with ``ids="int"``) non-integer id, a bad rating or timestamp, an empty file.
    """
    if ids not in ("auto", "int", "str"):
        raise ValueError(f"read_delimited: ids must be 'auto', 'int' or 'str', got {ids!r}")
    with open(path, encoding=encoding, newline="") as f:
        text = f.read()
    rows = _iter_rows(path, text, sep)
    if header:
        if not rows:
            raise ReaderError.at(path, None, "no header and no interactions (empty file)", None, "a header line")
        header_line, names = rows[0]
        rows = rows[1:]
    else:
        header_line, names = 0, []
    cols = {"user": user_col, "item": item_col, "rating": rating_col, "timestamp": time_col}
    pos = {}
    for key, col in cols.items():
        if col is None:
            continue
        if isinstance(col, str):
            if not header:
                raise ValueError(f"read_delimited({path}): column {col!r} given by name but header=False")
            if col not in names:
                raise ReaderError.at(path, header_line, f"no column named {col!r} in the header", col,
                                     f"one of {names}")
            pos[key] = names.index(col)
        else:
            pos[key] = int(col)
    if not rows:
        raise ReaderError.at(path, None, "no interactions (empty file)", None, "at least one data row")
    ncols = len(names) if header else len(rows[0][1])
    need = max(pos.values()) + 1
    if ncols < need:
        ln = header_line if header else rows[0][0]
        raise ReaderError.at(path, ln, f"too few columns ({ncols})", None, f"at least {need} columns")
    lines = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    for ln, fields in rows:
        if len(fields) != ncols:
            raise ReaderError.at(
                path, ln, f"wrong number of fields ({len(fields)})", (sep or " ").join(fields),
                f"{ncols} fields" + (" like the header" if header else f" like line {rows[0][0]}"),
            )
    colvals = {k: [r[1][p] for r in rows] for k, p in pos.items()}
    user = _id_column(colvals["user"], lines, path, "user id", ids)
    item = _id_column(colvals["item"], lines, path, "item id", ids)
    rating = _float_values(colvals["rating"], lines, path, "rating") if "rating" in colvals else None
    ts = _time_values(colvals["timestamp"], lines, path) if "timestamp" in colvals else None
    extra = np.zeros(0, dtype=user.dtype)
    return RawInteractions(user, item, rating=rating, timestamp=ts, source=str(path), extra_users=extra)
