"""Helpers for the tests: buckets built to order, backend blocks, running the shim."""
