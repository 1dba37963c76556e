"""Benchmarks: each prints DishLens's speed against a baseline timed in the same run.

Run from the repository root as ``python3 -m benchmarks.NAME`` (``--help`` for the options);
``docs/benchmarks.md`` lists them and records what they measured.
"""
