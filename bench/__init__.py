"""Benchmarks and load tests (`make bench`); not part of `make test`."""
