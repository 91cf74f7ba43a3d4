"""State recovery: the state's versions, which run wrote each, what a write changed, and
restoring an earlier version under the state lock (``tfwrap state``).

- ``versions``: read (one listing of the state key's prefix gives the state's versions, the
  lock's versions and the ``state_backup`` copies; bodies are read by version ID).
- ``attribution``, ``diff``, ``summary``: decide (pure functions over what was read).
- ``show``: the report lines and JSON documents.
- ``restore``: act (the lock, the conditional write, the digest, the read-back).
- ``backup``: the opt-in copy a supervised apply makes on a store without versioning.

No attribute value of any state ever leaves these modules: summaries hold counts, addresses,
types and attribute *names* only (docs/decisions/081-state-values-never-shown.md).
"""
