"""Seeding for entry points only (CLI, benchmarks); library code takes generators."""
from __future__ import annotations

import logging
import random

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global RNGs. Call from entry points, never from library code."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    logger.debug("seeded python, numpy and torch with %d", seed)
