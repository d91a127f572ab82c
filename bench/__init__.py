"""Benchmarks of target-sync against a raw DuckDB baseline and a naive pandas script.

``python -m bench.run --sizes 1000000`` generates (or reuses) synthetic warehouses under
``bench/data/`` and measures each variant in a fresh subprocess; see ``bench/README.md``.
"""
