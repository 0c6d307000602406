import sys
from pathlib import Path

# make tests/contracts.py importable as `contracts` from any test sub-directory
sys.path.insert(0, str(Path(__file__).parent))

from contracts import fitted  # noqa: E402,F401  (the encoder-contract fixture, shared by all test modules)
