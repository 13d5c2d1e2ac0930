"""`python -m bench` works like the `bench` command (also from a checkout with PYTHONPATH=.)."""

from bench.entry import main

main()
