"""``OrphanProxy``: makes the SDK retry a lock write that succeeded; now ``FaultProxy.arm``.

Kept for the tests that import it by this name (tests/support/faultproxy.py says how).
"""

from __future__ import annotations

from tests.support.faultproxy import DYNAMODB_LOCK, S3_LOCK, FaultProxy

__all__ = ["DYNAMODB_LOCK", "S3_LOCK", "OrphanProxy"]


class OrphanProxy(FaultProxy):
    """``FaultProxy`` in front of ``127.0.0.1:target_port`` whose ``arm()`` drops the answer
    of the next request containing ``takes_lock``."""

    def __init__(self, target_port: int, takes_lock: bytes = S3_LOCK) -> None:
        super().__init__(f"http://127.0.0.1:{target_port}")
        self.takes_lock = takes_lock
        self.start()  # as before: it serves from construction on

    def arm(self, takes_lock: bytes = b"") -> None:
        super().arm(takes_lock or self.takes_lock)
