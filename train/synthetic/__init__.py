"""A deterministic, offline generator of paired (drawn face, sentence, label) emotion data."""

from train.synthetic.cli import main
from train.synthetic.dataset import generate
from train.synthetic.faces import draw_face
from train.synthetic.samples import make_sample, plan
from train.synthetic.text import make_sentence

__all__ = ["draw_face", "generate", "main", "make_sample", "make_sentence", "plan"]
