"""Tests of graphcf.data.readers on small files written by each test."""
from __future__ import annotations

import numpy as np
import pytest

from graphcf.data import readers
from graphcf.data.readers import (
    ReaderError,
    read_delimited,
    read_lightgcn,
    read_movielens,
    read_ncf_negative,
    read_ncf_rating,
    read_triples,
)


def write(tmp_path, name, text, mode="w"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def raises_at(fn, *args, name, line, token=None, **kw):
    """Assert ``fn`` raises ReaderError naming the file, the line and (optionally) the token."""
    with pytest.raises(ReaderError) as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    assert name in msg, msg
    if line is None:
        assert ei.value.line is None
    else:
        assert f"line {line}:" in msg, msg
        assert ei.value.line == line
    if token is not None:
        assert repr(token) in msg, msg
    return ei.value


def naive_lightgcn(text):
    users, items, extra = [], [], []
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if len(f) == 1:
            extra.append(int(f[0]))
        for it in f[1:]:
            users.append(int(f[0]))
            items.append(int(it))
    return np.array(users), np.array(items), np.unique(np.array(extra, dtype=np.int64))


# ------------------------------------------------------------------ LightGCN


def test_lightgcn_basic_tabs_spaces_empty_lines_extra_users(tmp_path):
    text = "0 1 2 3\n\n1\t4  5\t\n2\n3 0\r\n   \n"
    p = write(tmp_path, "train.txt", text)
    r = read_lightgcn(p)
    assert r.user.dtype == np.int64 and r.item.dtype == np.int64
    assert r.user.tolist() == [0, 0, 0, 1, 1, 3]
    assert r.item.tolist() == [1, 2, 3, 4, 5, 0]
    assert r.extra_users.tolist() == [2]
    assert r.rating is None and r.timestamp is None
    assert r.source == str(p)


def test_lightgcn_no_trailing_newline_and_declared_sizes(tmp_path):
    p = write(tmp_path, "test.txt", "0 1\n1 2")
    r = read_lightgcn(p, num_users=2, num_items=3)
    assert r.user.tolist() == [0, 1] and r.item.tolist() == [1, 2]


def test_lightgcn_matches_naive_parser_and_chunking(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    lines = []
    for u in range(300):
        k = int(rng.integers(0, 12))
        lines.append(" ".join(str(x) for x in [u] + rng.integers(0, 10**9, k).tolist()))
        if u % 37 == 0:
            lines.append("")
    text = "\n".join(lines) + "\n"
    p = write(tmp_path, "train.txt", text)
    want = naive_lightgcn(text)
    r = read_lightgcn(p)
    assert np.array_equal(r.user, want[0]) and np.array_equal(r.item, want[1])
    assert np.array_equal(r.extra_users, want[2])
    monkeypatch.setattr(readers, "_CHUNK", 50)  # many tiny chunks, cut at newlines
    r2 = read_lightgcn(p)
    assert np.array_equal(r2.user, want[0]) and np.array_equal(r2.item, want[1])


def test_lightgcn_bom_is_ignored(tmp_path):
    p = write(tmp_path, "train.txt", b"\xef\xbb\xbf0 1 2\n")
    assert read_lightgcn(p).item.tolist() == [1, 2]


def test_lightgcn_errors(tmp_path):
    p = write(tmp_path, "train.txt", "0 1 2\n1 3 x4 5\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=2, token="x4")
    assert "non-integer item id" in str(e) and "non-negative decimal integer" in str(e)
    p = write(tmp_path, "train.txt", "0 1 2\n\nu1 3\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=3, token="u1")
    assert "user id" in str(e)
    p = write(tmp_path, "train.txt", "0 1 2\n1 -3\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=2, token="-3")
    assert "negative item id" in str(e)
    p = write(tmp_path, "train.txt", "0 1 2.5\n")
    raises_at(read_lightgcn, p, name="train.txt", line=1, token="2.5")
    p = write(tmp_path, "train.txt", "0 1\n1 12345678901234567890\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=2, token="12345678901234567890")
    assert "too large" in str(e)


def test_lightgcn_declared_bounds(tmp_path):
    p = write(tmp_path, "test.txt", "0 1 2\n1 3\n2 1\n")
    e = raises_at(read_lightgcn, p, name="test.txt", line=2, token="3", num_items=3)
    assert "num_items=3" in str(e)
    e = raises_at(read_lightgcn, p, name="test.txt", line=3, token="2", num_users=2)
    assert "num_users=2" in str(e)
    # a user-only line is checked too
    p = write(tmp_path, "test.txt", "0 1\n5\n")
    raises_at(read_lightgcn, p, name="test.txt", line=2, token="5", num_users=5)


def test_lightgcn_empty(tmp_path):
    p = write(tmp_path, "train.txt", "")
    raises_at(read_lightgcn, p, name="train.txt", line=None)
    p = write(tmp_path, "train.txt", "\n \n0\n1\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=None)
    assert "no interactions" in str(e)


# ------------------------------------------------------------------ triples


def test_triples_three_and_two_columns(tmp_path):
    p = write(tmp_path, "train.txt", "0 1 1\n0 2 0.5\n\n3 4 1\n")
    r = read_triples(p)
    assert r.user.tolist() == [0, 0, 3] and r.item.tolist() == [1, 2, 4]
    assert r.rating.dtype == np.float64 and r.rating.tolist() == [1.0, 0.5, 1.0]
    p = write(tmp_path, "valid.txt", "0\t1\n2\t3\n")
    r = read_triples(p)
    assert r.item.tolist() == [1, 3] and r.rating is None


def test_triples_errors(tmp_path):
    p = write(tmp_path, "train.txt", "0 1 1\n0 2\n")
    e = raises_at(read_triples, p, name="train.txt", line=2)
    assert "wrong number of columns" in str(e)
    p = write(tmp_path, "train.txt", "0 1 1 7\n")
    raises_at(read_triples, p, name="train.txt", line=1)
    p = write(tmp_path, "train.txt", "0\n")
    raises_at(read_triples, p, name="train.txt", line=1)
    p = write(tmp_path, "train.txt", "0 1 1\n2 3 one\n")
    e = raises_at(read_triples, p, name="train.txt", line=2, token="one")
    assert "rating" in str(e)
    p = write(tmp_path, "train.txt", "0 1 1\n2 3 nan\n")
    raises_at(read_triples, p, name="train.txt", line=2, token="nan")
    p = write(tmp_path, "train.txt", "0 1 1\n-2 3 1\n")
    raises_at(read_triples, p, name="train.txt", line=2, token="-2")
    p = write(tmp_path, "train.txt", "\n\n")
    raises_at(read_triples, p, name="train.txt", line=None)


# ------------------------------------------------------------------ NCF


def test_ncf_rating(tmp_path):
    p = write(tmp_path, "ml-1m.train.rating", "0\t32\t4\t978824330\n0\t34\t5\t978824330\n1\t7\t3\t978300760\n")
    r = read_ncf_rating(p)
    assert r.user.tolist() == [0, 0, 1] and r.item.tolist() == [32, 34, 7]
    assert r.rating.tolist() == [4.0, 5.0, 3.0]
    assert r.timestamp.dtype == np.int64 and r.timestamp.tolist() == [978824330, 978824330, 978300760]


def test_ncf_rating_errors(tmp_path):
    p = write(tmp_path, "x.train.rating", "0\t32\t4\t978824330\n0\t34\t5\n")
    raises_at(read_ncf_rating, p, name="x.train.rating", line=2)
    p = write(tmp_path, "x.train.rating", "0\t32\t4\t978824330\n0\tabc\t5\t1\n")
    raises_at(read_ncf_rating, p, name="x.train.rating", line=2, token="abc")
    p = write(tmp_path, "x.train.rating", "0\t32\t4\t978824330\n0\t3\t5\tyesterday\n")
    e = raises_at(read_ncf_rating, p, name="x.train.rating", line=2, token="yesterday")
    assert "timestamp" in str(e)


def test_ncf_negative(tmp_path):
    p = write(tmp_path, "x.test.negative", "(0,25)\t1\t2\t3\n(1,133)\t4\t5\t6\n\n(2, 7)\t8\t9\t10\n")
    u, i, n = read_ncf_negative(p)
    assert u.tolist() == [0, 1, 2] and i.tolist() == [25, 133, 7]
    assert n.dtype == np.int64 and n.shape == (3, 3)
    assert n.tolist() == [[1, 2, 3], [4, 5, 6], [8, 9, 10]]


def test_ncf_negative_errors(tmp_path):
    p = write(tmp_path, "x.test.negative", "(0,25)\t1\t2\n(1;133)\t4\t5\n")
    e = raises_at(read_ncf_negative, p, name="x.test.negative", line=2, token="(1;133)")
    assert "malformed" in str(e)
    p = write(tmp_path, "x.test.negative", "(0,25)\t1\t2\n1\t4\t5\n")
    raises_at(read_ncf_negative, p, name="x.test.negative", line=2, token="1")
    p = write(tmp_path, "x.test.negative", "(0,25)\t1\t2\n(1,3)\t4\t5\t6\n")
    e = raises_at(read_ncf_negative, p, name="x.test.negative", line=2)
    assert "unequal number of negatives" in str(e)
    p = write(tmp_path, "x.test.negative", "(0,25)\t1\t2\n(1,3)\t4\tq\n")
    raises_at(read_ncf_negative, p, name="x.test.negative", line=2, token="q")
    p = write(tmp_path, "x.test.negative", "(0,25)\n")
    raises_at(read_ncf_negative, p, name="x.test.negative", line=1)
    p = write(tmp_path, "x.test.negative", "")
    raises_at(read_ncf_negative, p, name="x.test.negative", line=None)


# ------------------------------------------------------------------ MovieLens


def test_movielens_udata(tmp_path):
    p = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    r = read_movielens(p)
    assert r.user.tolist() == [196, 186, 22] and r.item.tolist() == [242, 302, 377]
    assert r.rating.tolist() == [3.0, 3.0, 1.0]
    assert r.timestamp.tolist() == [881250949, 891717742, 878887116]


def test_movielens_ratings_dat(tmp_path):
    p = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3.5::978302109\r\n\n2::914::3::978301968\n")
    r = read_movielens(p)
    assert r.user.tolist() == [1, 1, 2] and r.item.tolist() == [1193, 661, 914]
    assert r.rating.tolist() == [5.0, 3.5, 3.0]
    assert r.timestamp.tolist() == [978300760, 978302109, 978301968]


def test_movielens_ratings_csv_with_header(tmp_path):
    p = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,4.0,1112484676\n")
    r = read_movielens(p)
    assert r.user.tolist() == [1, 1] and r.item.tolist() == [2, 29] and r.rating.tolist() == [3.5, 4.0]
    p = write(tmp_path, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,x,4.0,1112484676\n")
    raises_at(read_movielens, p, name="ratings.csv", line=3, token="x")


def test_movielens_errors(tmp_path):
    p = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::::661::3::978302109\n")
    e = raises_at(read_movielens, p, name="ratings.dat", line=2)
    assert "empty field" in str(e)
    p = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::661::3\n1::3::3::4\n")
    raises_at(read_movielens, p, name="ratings.dat", line=2)
    p = write(tmp_path, "ratings.dat", "1::1193::5::978300760\n1::6 61::3::4\n")
    raises_at(read_movielens, p, name="ratings.dat", line=2)
    p = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\tgood\t891717742\n")
    raises_at(read_movielens, p, name="u.data", line=2, token="good")
    p = write(tmp_path, "u.data", "196\t242\t3\t881250949\n186\t302\t891717742\n")
    raises_at(read_movielens, p, name="u.data", line=2)
    p = write(tmp_path, "u.data", "")
    raises_at(read_movielens, p, name="u.data", line=None)


# ------------------------------------------------------------------ delimited


def test_delimited_string_ids_by_name(tmp_path):
    text = (
        "reviewerID,asin,overall,unixReviewTime\n"
        "A1,0000031852,5.0,1388707200\n"
        '"A2, jr",B00ABC,4,1388707201\n'
        "\n"
        "A1,B00ABC,3,1388707202\n"
    )
    p = write(tmp_path, "beauty.csv", text)
    r = read_delimited(p, "reviewerID", "asin", rating_col="overall", time_col="unixReviewTime")
    assert r.user.dtype.kind == "U" and r.item.dtype.kind == "U"
    assert r.user.tolist() == ["A1", "A2, jr", "A1"]
    assert r.item.tolist() == ["0000031852", "B00ABC", "B00ABC"]  # leading zeros kept
    assert r.rating.tolist() == [5.0, 4.0, 3.0]
    assert r.timestamp.tolist() == [1388707200, 1388707201, 1388707202]
    assert r.extra_users.dtype.kind == "U"


def test_delimited_int_ids_by_position_no_header(tmp_path):
    p = write(tmp_path, "x.tsv", "3\tfoo\t10\n1\tbar\t2\n")
    r = read_delimited(p, 0, 2, sep="\t", header=False)
    assert r.user.dtype == np.int64 and r.user.tolist() == [3, 1]
    assert r.item.dtype == np.int64 and r.item.tolist() == [10, 2]
    r = read_delimited(p, 0, 1, sep="\t", header=False, ids="str")
    assert r.user.tolist() == ["3", "1"] and r.item.tolist() == ["foo", "bar"]


def test_delimited_multichar_and_whitespace_sep_and_iso_time(tmp_path):
    p = write(tmp_path, "r.dat", "1::a::2020-01-01T00:00:10\n2::b::2020-01-01 00:00:00\n")
    r = read_delimited(p, 0, 1, time_col=2, sep="::", header=False)
    assert r.user.tolist() == [1, 2] and r.item.tolist() == ["a", "b"]
    assert r.timestamp.tolist() == [1577836810, 1577836800]
    p = write(tmp_path, "r.txt", "u i\nx  y\n z\tw \n")
    r = read_delimited(p, "u", "i", sep=None)
    assert r.user.tolist() == ["x", "z"] and r.item.tolist() == ["y", "w"]


def test_delimited_errors(tmp_path):
    p = write(tmp_path, "d.csv", "user,item\nu1,i1\nu2,i2,extra\n")
    e = raises_at(read_delimited, p, "user", "item", name="d.csv", line=3)
    assert "wrong number of fields" in str(e)
    p = write(tmp_path, "d.csv", "user,item\nu1,i1\n")
    e = raises_at(read_delimited, p, "user", "movie", name="d.csv", line=1, token="movie")
    assert "no column named" in str(e)
    p = write(tmp_path, "d.csv", "user,item\n1,2\n3,x\n")
    raises_at(read_delimited, p, "user", "item", ids="int", name="d.csv", line=3, token="x")
    p = write(tmp_path, "d.csv", "user,item\n1,2\n-3,4\n")
    e = raises_at(read_delimited, p, "user", "item", name="d.csv", line=3, token="-3")
    assert "negative user id" in str(e)
    p = write(tmp_path, "d.csv", "user,item,r\n1,2,5\n\n3,4,bad\n")
    raises_at(read_delimited, p, "user", "item", rating_col="r", name="d.csv", line=4, token="bad")
    p = write(tmp_path, "d.csv", "user,item,t\n1,2,5\n3,4,notatime\n")
    raises_at(read_delimited, p, "user", "item", time_col="t", name="d.csv", line=3, token="notatime")
    p = write(tmp_path, "d.csv", "user,item\n")
    raises_at(read_delimited, p, "user", "item", name="d.csv", line=None)
    p = write(tmp_path, "d.csv", "")
    raises_at(read_delimited, p, 0, 1, name="d.csv", line=None)
    p = write(tmp_path, "d.csv", "1,2\n")
    with pytest.raises(ValueError, match="header=False"):
        read_delimited(p, "user", 1, header=False)


def test_reader_error_is_value_error(tmp_path):
    p = write(tmp_path, "t.txt", "0 a\n")
    with pytest.raises(ValueError):
        read_lightgcn(p)
    try:
        read_lightgcn(p)
    except ReaderError as e:
        assert e.path == str(p) and e.line == 1 and e.token == "a" and e.expected


def test_lightgcn_first_out_of_range_id_in_file_order(tmp_path):
    p = write(tmp_path, "train.txt", "0 1\n1 9\n7 0\n")
    e = raises_at(read_lightgcn, p, name="train.txt", line=2, token="9", num_users=5, num_items=5)
    assert "item id out of range" in str(e)


def test_reader_error_pickles(tmp_path):
    import pickle

    p = write(tmp_path, "t.txt", "0 a\n")
    with pytest.raises(ReaderError) as ei:
        read_lightgcn(p)
    e2 = pickle.loads(pickle.dumps(ei.value))
    assert str(e2) == str(ei.value) and e2.line == 1 and e2.token == "a"
