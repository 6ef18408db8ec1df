"""A deterministic, offline generator of paired (drawn face, sentence, label) emotion data."""

from tests.synthetic.cli import main
from tests.synthetic.dataset import generate
from tests.synthetic.faces import draw_face
from tests.synthetic.samples import make_sample, plan
from tests.synthetic.text import make_sentence

__all__ = ["draw_face", "generate", "main", "make_sample", "make_sentence", "plan"]
