"""`python -m tests.synthetic ...` writes a generated dataset (see `tests.synthetic.cli`)."""

from tests.synthetic.cli import main

if __name__ == "__main__":
    main()
