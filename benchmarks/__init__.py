"""Benchmarks for DESIGN §6 (``make bench``): generators, the naive baseline, the runner."""
