"""`python -m train ...` runs the training script (see train/train.py)."""

from train.train import main

main()
