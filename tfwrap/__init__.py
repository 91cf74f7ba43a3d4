"""tfwrap: a drop-in ``terraform`` that checks the S3 backend and keeps the state lock safe."""

__version__ = "0.1.0"
