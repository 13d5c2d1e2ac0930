"""`python -m bench` works like the `bench` command (also from a checkout with PYTHONPATH=.)."""

from bench.cli import main

main()
