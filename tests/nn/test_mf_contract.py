from contracts import EncoderContract

from graphcf.nn.encoders import MFEncoder
from graphcf.nn.scorers import DotScorer


class TestMFContract(EncoderContract):
    def make_model(self, num_users, num_items):
        return MFEncoder(num_users, num_items, dim=8), DotScorer()
