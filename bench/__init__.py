"""Benchmarks of streaming_app (see bench/README.md)."""
