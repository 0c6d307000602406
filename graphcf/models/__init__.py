"""The model registry (:data:`MODELS`) and its entries: every graphcf model, declared once.

See :mod:`graphcf.models.registry` for the contract; ``docs/design.md`` ("Adding a model") for the steps.
"""
from graphcf.models.registry import (GENERIC_SCORERS, MODELS, ModelSpec, build_model, default_sections,
                                     default_train_args, make_model, model_spec, register_model,
                                     resolve_sections)
from graphcf.models.ease import EASE
from graphcf.nn.encoders import LightGCNEncoder, MFEncoder, NGCFEncoder, PinSAGEEncoder, PopularityEncoder
from graphcf.nn.encoders.ncf import GMFEncoder, MLPEncoder, NeuMFEncoder
from graphcf.nn.encoders.vae import MultDAEEncoder, MultVAEEncoder
from graphcf.nn.scorers_ncf import GMFScorer, MLPScorer, NeuMFScorer

__all__ = ["MODELS", "ModelSpec", "GENERIC_SCORERS", "register_model", "make_model", "build_model", "model_spec",
           "default_sections", "default_train_args", "resolve_sections", "EASE"]

_NCF_TRAIN = {"batch_size": 256, "lr": 1e-3, "optimizer": "adam"}
_NCF_OBJECTIVE = {"name": "bce", "num_negatives": 4, "reg": 0.0}

register_model("popularity", PopularityEncoder, summary="item counts (no training)")
register_model("mf", MFEncoder, summary="BPR-MF (Rendle et al. 2009)")
register_model("gmf", GMFEncoder, GMFScorer, _NCF_TRAIN, _NCF_OBJECTIVE, "GMF (He et al. 2017)")
register_model("mlp", MLPEncoder, MLPScorer, _NCF_TRAIN, _NCF_OBJECTIVE, "NCF's MLP (He et al. 2017)")
register_model("neumf", NeuMFEncoder, NeuMFScorer, _NCF_TRAIN, _NCF_OBJECTIVE, "NeuMF (He et al. 2017)")
# Liang et al. 2018: 200 epochs, batches of 500 users, Adam 1e-3, best epoch by val NDCG@100;
# the VAE anneals beta = min(0.2, step / 200k); the DAE has no KL (beta = 1 for its optional L2 `lam`).
_VAE_TRAIN = {"batch_size": 500, "lr": 1e-3, "epochs": 200, "patience": 0, "metric": "ndcg@100"}
register_model("multvae", MultVAEEncoder, train=_VAE_TRAIN,
               objective={"name": "multinomial", "anneal_steps": 200_000, "anneal_cap": 0.2},
               summary="Mult-VAE (Liang et al. 2018)")
register_model("multdae", MultDAEEncoder, train=_VAE_TRAIN,
               objective={"name": "multinomial", "anneal_steps": 0, "anneal_cap": 1.0},
               summary="Mult-DAE (Liang et al. 2018)")
# He et al. 2020 (official code): BPR, batch 2048, Adam 1e-3, L2 1e-4 on the batch's ego embeddings
register_model("lightgcn", LightGCNEncoder, train={"batch_size": 2048, "lr": 1e-3},
               objective={"name": "bpr", "reg": 1e-4, "num_negatives": 1}, summary="LightGCN (He et al. 2020)")
# Wang et al. 2019 (official run script): BPR, batch 1024, Adam 1e-4, L2 1e-5 on the batch's outputs
register_model("ngcf", NGCFEncoder, train={"batch_size": 1024, "lr": 1e-4},
               objective={"name": "bpr", "reg": 1e-5, "num_negatives": 1}, summary="NGCF (Wang et al. 2019)")
# Ying et al. 2018: max-margin loss on the (unit-norm) embeddings' cosine scores, negatives shared by
# the mini-batch (500 in the paper). citeulike validation, 10 epochs: lr 5e-3 beat 2e-2 (recall@20
# .059 vs .043) and margin 0.1 beat 0.5 (.059 vs .043); sampled softmax (tau 0.1) reached .071, BPR .025
register_model("pinsage", PinSAGEEncoder, train={"batch_size": 2048, "lr": 5e-3},
               objective={"name": "margin", "margin": 0.1, "reg": 0.0, "num_negatives": 500, "sampler": "shared"},
               summary="PinSAGE (Ying et al. 2018)")
register_model("ease", EASE, summary="EASE (Steck 2019): closed-form item-item model, training-free")
