"""Benchmarks of the operator against the local test bed: `python -m bench.reconcile|floor|drift`.

Each program prints a human summary and, with `--json PATH`, writes its numbers as JSON.
See bench/RESULTS.md for the commands and the numbers measured.
"""
