"""Benchmarks: `make bench` measures calls, request units, cold start, latency and cost, and
writes docs/benchmarks.md. Figures are printed, never asserted."""
