"""Supervised runs: Terraform as a child, its lock annotated, signals relayed once,
its own lock removed whatever happens."""
