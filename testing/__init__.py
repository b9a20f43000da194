"""Helpers that start real copyhub processes on loopback, for tests and benchmarks."""
