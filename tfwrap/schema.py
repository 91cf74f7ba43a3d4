"""The ``schema_version`` every ``--json`` document of tfwrap carries (audit's has its own).

Standard library only: the findings report on the shim's hot path uses it.

It is raised when a field is removed or changes meaning; new fields do not raise it, so a
consumer reads the fields it knows and checks this number.
"""

VERSION = 1


def versioned(document: dict[str, object]) -> dict[str, object]:
    """``document`` with ``schema_version`` first."""
    return {"schema_version": VERSION, **document}
