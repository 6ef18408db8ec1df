"""`python -m train.synthetic ...` writes a generated dataset (see `train.synthetic.cli`)."""

from train.synthetic.cli import main

if __name__ == "__main__":
    main()
