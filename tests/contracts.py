"""Behavioural contract every encoder must pass (after implicit's RecommenderBaseTestMixin).

A test module subclasses :class:`EncoderContract` as ``class TestX(EncoderContract)`` and
supplies ``make_model(num_users, num_items) -> (encoder, scorer)`` and ``train_config()``.
"""
from __future__ import annotations

from typing import Tuple

import pytest
import torch

from graphcf.data import Interactions, to_heterodata
from graphcf.nn.encoders import Encoder
from graphcf.nn.scorers import Scorer
from graphcf.recommend import recommend
from graphcf.train import Trainer, TrainConfig


def checkerboard(n: int = 40):
    """``n`` users x ``n`` items: even users like even items, odd users odd items; the diagonal
    (user ``u``, item ``u``) is held out as the test split. Returns ``(data, heldout [n])``."""
    u, i = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    like = (u % 2) == (i % 2)
    train = like & (u != i)
    tu, ti = train.nonzero(as_tuple=True)
    data = to_heterodata({
        "train": Interactions(tu, ti, n, n),
        "test": Interactions(torch.arange(n), torch.arange(n), n, n),
    })
    return data, torch.arange(n)


class Killed(Exception):
    """Raised by :class:`KillAt` to simulate a run killed mid-training."""


class KillAt(Trainer):
    """A trainer that dies at the start of epoch ``at`` (after the previous checkpoint was written)."""

    def __init__(self, cfg: TrainConfig, at: int) -> None:
        super().__init__(cfg)
        self.at = at

    def _train_epoch(self, *args, **kw):  # type: ignore[no-untyped-def]
        if args[-1] == self.at:  # the epoch argument
            raise Killed()
        return super()._train_epoch(*args, **kw)


@pytest.fixture(scope="class")
def fitted(request):
    """The contract class's model, trained once per test class on :func:`checkerboard`."""
    self = request.cls()
    torch.manual_seed(0)
    data, held = checkerboard(self.n)
    enc, scorer = self.make_model(self.n, self.n)
    Trainer(self.train_config()).fit(enc, data, scorer)
    enc.eval()
    return data, held, enc, scorer


class EncoderContract:
    """No ``Test`` prefix: pytest collects only the subclasses."""

    n = 40
    #: share of users whose top-1 must be their held-out item. 1.0 for every model whose
    #: scores are low-rank; the NCF MLP towers learn the negatives they were trained on
    #: (the held-out item is sampled as a negative too) and may lower it, with a reason.
    min_top1 = 1.0

    def make_model(self, num_users: int, num_items: int) -> Tuple[Encoder, Scorer]:  # pragma: no cover
        raise NotImplementedError

    def train_config(self) -> TrainConfig:
        return TrainConfig.from_flat(epochs=60, batch_size=64, lr=0.05, reg=0.0, eval_every=0, seed=0)


    def test_checkerboard_top1_is_heldout(self, fitted):
        data, held, enc, scorer = fitted
        top = recommend(enc, scorer, data, torch.arange(self.n), k=1)
        assert (top.indices[:, 0] == held).float().mean() >= self.min_top1

    def test_batch_equals_single_user(self, fitted):
        data, _, enc, scorer = fitted
        batch = recommend(enc, scorer, data, torch.arange(6), k=5)
        for u in range(6):
            one = recommend(enc, scorer, data, torch.tensor([u]), k=5)
            assert torch.equal(one.indices[0], batch.indices[u])
            torch.testing.assert_close(one.scores[0], batch.scores[u], rtol=1e-5, atol=1e-4)  # matmul blocking

    def test_seen_items_never_recommended(self, fitted):
        data, _, enc, scorer = fitted
        k = self.n // 2 + 1  # exactly the number of unseen items of each user
        top = recommend(enc, scorer, data, torch.arange(self.n), k=k)
        ei = data["user", "interacts", "item"].edge_index
        seen = set(zip(ei[0].tolist(), ei[1].tolist()))
        for u in range(self.n):
            assert not any((u, i) in seen for i in top.indices[u].tolist())

    def test_state_dict_round_trip(self, fitted):
        data, _, enc, scorer = fitted
        enc2, scorer2 = self.make_model(self.n, self.n)
        enc2.load_state_dict(enc.state_dict())
        scorer2.load_state_dict(scorer.state_dict())
        enc2.eval()
        a = recommend(enc, scorer, data, torch.arange(self.n), k=10)
        b = recommend(enc2, scorer2, data, torch.arange(self.n), k=10)
        assert torch.equal(a.indices, b.indices) and torch.equal(a.scores, b.scores)

    def test_embed_rows_equals_forward_gather(self, fitted):
        data, _, enc, _ = fitted
        enc.eval()
        users, items = torch.tensor([3, 0, 3, 7]), torch.tensor([5, 5, 1, 0, 9])
        with torch.no_grad():
            full = enc(data)
            rows = enc.embed_rows(data, users, items)
        torch.testing.assert_close(rows.user, full.user[users])
        torch.testing.assert_close(rows.item, full.item[items])
