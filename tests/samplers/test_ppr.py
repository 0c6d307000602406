"""PinSAGE PPR hard negatives: PPR scores, rank bands and sampling against exact dense references."""
import pytest
import torch

from graphcf.samplers.ppr import PPRHardNegativeSampler, default_ppr_band, item_ppr


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests run single-threaded (the machine is shared); the thread count is restored."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------ references


def _random_graph(nu, ni, p, seed, isolated_users=()):
    """Random bipartite graph: every user (but ``isolated_users``) and every item has an edge."""
    g = torch.Generator().manual_seed(seed)
    m = torch.rand(nu, ni, generator=g) < p
    m[torch.arange(ni) % nu, torch.arange(ni)] = True  # every item has a user
    m[torch.arange(nu), torch.randint(0, ni, (nu,), generator=g)] = True  # every user has an item
    for u in isolated_users:
        m[u] = False
    return torch.stack(m.nonzero(as_tuple=True)), m


def _exact_ppr(m, alpha, tol=1e-15):
    """``[U, I]`` float64 item part of the exact PPR of every user, normalised to sum 1 over items.

    Power iteration to convergence of pi <- alpha e_u + (1 - alpha) pi P on the full
    (U + I) x (U + I) random-walk matrix P (row-normalised adjacency of the bipartite graph)."""
    nu, ni = m.shape
    a = torch.zeros(nu + ni, nu + ni, dtype=torch.float64)
    a[:nu, nu:] = m.double()
    a[nu:, :nu] = m.double().T
    deg = a.sum(1, keepdim=True)
    p = torch.where(deg > 0, a / deg.clamp_min(1), 0)
    restart = torch.eye(nu + ni, dtype=torch.float64)[:nu] * alpha
    pi = restart.clone()
    for _ in range(10000):
        nxt = restart + (1 - alpha) * pi @ p
        done = (nxt - pi).abs().max() < tol
        pi = nxt
        if done:
            break
    else:  # pragma: no cover
        raise AssertionError("power iteration did not converge")
    items = pi[:, nu:]
    return items / items.sum(1, keepdim=True).clamp_min(1e-300)


def _normalised(x):
    x = x.double()
    return x / x.sum(1, keepdim=True).clamp_min(1e-300)


def _topk_overlap(a, b, k):
    ta, tb = a.topk(k, dim=1).indices, b.topk(k, dim=1).indices
    return sum(len(set(x.tolist()) & set(y.tolist())) for x, y in zip(ta, tb)) / (k * a.shape[0])


# ------------------------------------------------------------------ item_ppr


def test_item_ppr_hand_worked_two_users_three_items():
    # u0 - {i0, i1}, u1 - {i1, i2}. With alpha = 1/2, beta = 1/4 and M = P_IU P_UI =
    # [[1/2, 1/2, 0], [1/4, 1/2, 1/4], [0, 1/2, 1/2]], s = y0 (I - beta M)^-1 with y0 = (1/2, 1/2, 0)
    # solves to (13, 14, 1) / 21 (sum 4/3 = 1 / (1 - beta)); u1 is the mirror image.
    ei = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2]])
    got = item_ppr(ei, 2, 3, torch.tensor([0, 1]), alpha=0.5, num_iters=60)
    want = torch.tensor([[13, 14, 1], [1, 14, 13]], dtype=torch.float64) / 21
    assert got.dtype == torch.float32 and got.shape == (2, 3)
    torch.testing.assert_close(got.double(), want, rtol=1e-6, atol=1e-7)
    # the exact PPR of the walk: alpha (1 - alpha) s on the items (item mass 1/3)
    exact = _exact_ppr(torch.tensor([[1, 1, 0], [0, 1, 1]], dtype=torch.bool), alpha=0.5)
    torch.testing.assert_close(_normalised(got), exact, rtol=1e-6, atol=1e-7)
    # after n iterations exactly the truncated series: one iteration is y0 + beta y0 M
    one = item_ppr(ei, 2, 3, torch.tensor([0]), alpha=0.5, num_iters=1)
    torch.testing.assert_close(one.double(), torch.tensor([[0.5 + 0.25 * 0.375, 0.5 + 0.25 * 0.5, 0.25 * 0.125]],
                                                          dtype=torch.float64))


def test_item_ppr_matches_exact_dense_power_iteration():
    nu, ni = 30, 200
    ei, m = _random_graph(nu, ni, 0.06, seed=0, isolated_users=(7,))
    exact = _exact_ppr(m, alpha=0.15)
    users = torch.arange(nu)
    converged = item_ppr(ei, nu, ni, users, alpha=0.15, num_iters=150)
    keep = users != 7
    torch.testing.assert_close(_normalised(converged[keep]), exact[keep], rtol=2e-4, atol=1e-7)
    # a user without training items: all-zero row
    assert torch.all(converged[7] == 0)
    # row sums of the truncated series: (1 - beta^(n+1)) / (1 - beta)
    beta = 0.85 ** 2
    default = item_ppr(ei, nu, ni, users)
    sums = default[keep].double().sum(1)
    torch.testing.assert_close(sums, torch.full_like(sums, (1 - beta ** 21) / (1 - beta)), rtol=1e-5, atol=0)
    # the default 20 iterations already rank like the converged PPR
    assert _topk_overlap(default[keep], exact[keep], 100) >= 0.95
    assert (_normalised(default[keep]) - exact[keep]).abs().max() < 1e-3


def test_item_ppr_users_order_repeats_dtypes_and_threads():
    ei, m = _random_graph(12, 40, 0.2, seed=3)
    all_rows = item_ppr(ei, 12, 40, torch.arange(12))
    users = torch.tensor([5, 0, 5, 11], dtype=torch.int32)
    torch.testing.assert_close(item_ppr(ei, 12, 40, users), all_rows[users.long()])
    # several torch threads: the blocks run on a pool of single-threaded workers; same result,
    # thread count restored
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        users = torch.arange(12).repeat(4)  # > one block of users
        torch.testing.assert_close(item_ppr(ei, 12, 40, users), all_rows.repeat(4, 1))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert item_ppr(ei, 12, 40, torch.tensor([], dtype=torch.long)).shape == (0, 40)


def test_item_ppr_argument_errors():
    ei = torch.tensor([[0, 1], [0, 1]])
    for alpha in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="alpha"):
            item_ppr(ei, 2, 2, torch.tensor([0]), alpha=alpha)
    with pytest.raises(ValueError, match="num_iters"):
        item_ppr(ei, 2, 2, torch.tensor([0]), num_iters=0)
    with pytest.raises(ValueError, match="edge_index"):
        item_ppr(ei[0], 2, 2, torch.tensor([0]))
    with pytest.raises(IndexError):
        item_ppr(ei, 2, 2, torch.tensor([2]))
    with pytest.raises(IndexError):
        item_ppr(torch.tensor([[0], [5]]), 2, 2, torch.tensor([0]))


# ------------------------------------------------------------------ band


def test_default_ppr_band():
    assert default_ppr_band(40981) == (2000, 5000)  # Gowalla: PinSAGE's ranks 2000..5000
    assert default_ppr_band(10**6) == (2000, 5000)
    assert default_ppr_band(1000) == (50, 125)
    assert default_ppr_band(16000) == (800, 2000)
    assert default_ppr_band(200) == (10, 25)
    assert default_ppr_band(10) == (1, 2)  # floors 0 and 1: lo >= 1, hi > lo
    assert default_ppr_band(2) == (1, 2)
    for n in range(2, 300):
        lo, hi = default_ppr_band(n)
        assert 1 <= lo < hi <= n
    with pytest.raises(ValueError, match="num_items"):
        default_ppr_band(1)


def _nonpositive_order(exact, m, u):
    """Non-positive items of user ``u`` by decreasing exact PPR, and their scores."""
    items = (~m[u]).nonzero().flatten()
    scores = exact[u, items]
    order = torch.argsort(scores, descending=True, stable=True)
    return items[order], scores[order]


def test_band_is_exact_rank_window_of_nonpositives():
    nu, ni, lo, hi = 24, 80, 5, 15
    ei, m = _random_graph(nu, ni, 0.15, seed=4)
    # a user with 8 non-positives (shorter band: ranks 5..7) and one with 3 (ranks 0..2: the last ones)
    m[20:22] = False
    m[20, :72] = True
    m[21, :77] = True
    ei = torch.stack(m.nonzero(as_tuple=True))
    exact = _exact_ppr(m, alpha=0.15)
    s = PPRHardNegativeSampler(ei, nu, ni, band=(lo, hi), num_iters=200, chunk_size=7)  # chunks of 7 users
    assert s.band == (lo, hi)
    assert s.band_items.dtype == torch.int32 and s.band_items.shape == (nu, hi - lo)
    assert s.band_len.dtype == torch.int32 and s.band_len.shape == (nu,)
    checked = 0
    for u in range(nu):
        items, scores = _nonpositive_order(exact, m, u)
        n_u = items.numel()
        start, stop = (lo, min(n_u, hi)) if n_u > lo else (max(0, n_u - (hi - lo)), n_u)
        length = int(s.band_len[u])
        assert length == stop - start
        band = s.band_items[u, :length].long()
        assert torch.all(s.band_items[u, length:] == -1)
        assert not m[u, band].any(), f"user {u}: a training positive in the band"
        assert len(set(band.tolist())) == length
        # exact order wherever the exact scores around and inside the window have no near-ties
        window = scores[max(start - 1, 0): stop + 1]
        if torch.all(window[:-1] - window[1:] > 1e-6 * window[0]):
            assert band.tolist() == items[start:stop].tolist(), f"user {u}"
            checked += 1
    assert checked >= nu - 4  # the comparison above really ran for (nearly) every user
    assert int(s.band_len[20]) == 3 and int(s.band_len[21]) == 3
    assert s.band_len[:20].eq(hi - lo).all()


def test_ties_broken_by_seeded_permutation_not_item_index():
    # user 0 - {0, 1}, user 1 - {1, 2}, user 2 - {10..59}; items 3..9 have no edges. From user 0 the
    # walk reaches item 2 (rank 0 of the non-positives); items 3..59 all score 0 and tie
    ei = torch.cat([torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2]]),
                    torch.stack([torch.full((50,), 2), torch.arange(10, 60)])], dim=1)
    bands = {}
    for seed in (0, 1):
        s = PPRHardNegativeSampler(ei, 3, 60, band=(20, 40), seed=seed)
        band = s.band_items[0].tolist()
        assert int(s.band_len[0]) == 20
        assert band != sorted(band)  # not in item-index order
        # exactly the tie-break permutation: ranks 1.. are the tied items in the seeded order
        perm = torch.randperm(60, generator=torch.Generator().manual_seed(seed)).tolist()
        tied = [i for i in perm if i >= 3]
        assert band == tied[19:39]
        bands[seed] = band
    assert bands[0] != bands[1]


def test_sample_draws_uniformly_from_the_band_only():
    nu, ni = 10, 120
    ei, m = _random_graph(nu, ni, 0.2, seed=5)
    m[3] = False
    m[3, :115] = True  # 5 non-positives, band (10, 30): the last 5 of them
    ei = torch.stack(m.nonzero(as_tuple=True))
    s = PPRHardNegativeSampler(ei, nu, ni, band=(10, 30))
    users = torch.arange(nu).repeat(50)
    neg = s.sample(users, 7, generator=torch.Generator().manual_seed(0))
    assert neg.dtype == torch.int64 and neg.shape == (500, 7)
    assert not m[users[:, None], neg].any()
    for u in range(nu):
        band = set(s.band_items[u, : int(s.band_len[u])].tolist())
        assert set(neg[users == u].flatten().tolist()) <= band
    # reproducible with a seeded generator, different with another seed
    again = s.sample(users, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)
    assert not torch.equal(neg, s.sample(users, 7, generator=torch.Generator().manual_seed(1)))
    # uniform over the band: chi-square over the L = 20 slots of one user, and the short band
    for u, length in ((0, 20), (3, 5)):
        assert int(s.band_len[u]) == length
        draws = s.sample(torch.full((4000,), u), 10, generator=torch.Generator().manual_seed(2)).flatten()
        band = s.band_items[u, :length].long()
        counts = (draws[:, None] == band[None]).sum(0).double()
        assert counts.sum() == draws.numel()
        expected = draws.numel() / length
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 3 * (length - 1) + 10, chi2  # mean length - 1; far in the tail otherwise
    # a 1-D integer tensor of any dtype; num_negatives must be >= 1
    assert s.sample(torch.tensor([1, 2], dtype=torch.int32), 1).shape == (2, 1)
    with pytest.raises(ValueError, match="num_negatives"):
        s.sample(users, 0)
    with pytest.raises(IndexError):
        s.sample(torch.tensor([nu]), 1)


def test_user_with_every_item_has_empty_band():
    # user 0 - {0, 1, 2}, user 1 - {0}, user 2 - {1}: from user 1 item 1 (also reached through
    # user 2) outranks item 2, from user 2 item 0 does; band (1, 2) is each one's second non-positive
    ei = torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 0, 1]])
    s = PPRHardNegativeSampler(ei, 3, 3, band=(1, 2))
    assert s.band_len.tolist() == [0, 1, 1]
    assert s.band_items[:, 0].tolist() == [-1, 2, 2]
    with pytest.raises(ValueError, match="user 0"):
        s.sample(torch.tensor([1, 0]), 2)


def test_sampler_argument_errors():
    ei, _ = _random_graph(5, 20, 0.3, seed=6)
    for band in ((-1, 5), (5, 5), (6, 5), (0, 21)):
        with pytest.raises(ValueError, match="band"):
            PPRHardNegativeSampler(ei, 5, 20, band=band)
    for alpha in (0, 1, 2.0):
        with pytest.raises(ValueError, match="alpha"):
            PPRHardNegativeSampler(ei, 5, 20, band=(1, 5), alpha=alpha)
    with pytest.raises(ValueError, match="num_iters"):
        PPRHardNegativeSampler(ei, 5, 20, band=(1, 5), num_iters=0)
    with pytest.raises(ValueError, match="chunk_size"):
        PPRHardNegativeSampler(ei, 5, 20, band=(1, 5), chunk_size=0)
    assert PPRHardNegativeSampler(ei, 5, 20, band=(0, 20)).band == (0, 20)
    assert PPRHardNegativeSampler(ei, 5, 20).band == default_ppr_band(20) == (1, 2)


def test_save_load_round_trip(tmp_path):
    ei, _ = _random_graph(9, 50, 0.2, seed=7)
    s = PPRHardNegativeSampler(ei, 9, 50, band=(3, 12), alpha=0.3, num_iters=15, seed=4)
    path = tmp_path / "ppr.pt"
    s.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["ppr.pt"]  # no temporary file left behind
    t = PPRHardNegativeSampler.load(path)
    assert t.band == s.band and (t.num_users, t.num_items) == (9, 50)
    assert (t.alpha, t.num_iters, t.seed) == (0.3, 15, 4)
    assert torch.equal(t.band_items, s.band_items) and torch.equal(t.band_len, s.band_len)
    users = torch.arange(9).repeat(3)
    assert torch.equal(t.sample(users, 4, generator=torch.Generator().manual_seed(3)),
                       s.sample(users, 4, generator=torch.Generator().manual_seed(3)))
    # overwrite in place; a file with inconsistent shapes is rejected
    s.save(path)
    state = torch.load(path, weights_only=True)
    state["band_items"] = state["band_items"][:, :-1]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="band_items"):
        PPRHardNegativeSampler.load(tmp_path / "bad.pt")
    torch.save({"x": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a saved"):
        PPRHardNegativeSampler.load(tmp_path / "other.pt")
