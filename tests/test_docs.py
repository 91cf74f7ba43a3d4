"""The reference tables in docs/ say what the code does: exit codes and findings."""

from __future__ import annotations

import re
from pathlib import Path

from tfwrap import exitcodes
from tfwrap.findings.finding import CATALOG

DOCS = Path(__file__).resolve().parent.parent / "docs"


def table_rows(path: Path) -> list[list[str]]:
    """The cells of a Markdown table's body rows, as written (backticks kept)."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in path.read_text().splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    return rows[1:]  # the header


def test_the_exit_code_table_is_the_code() -> None:
    rows = table_rows(DOCS / "exit-codes.md")
    documented = {(name.strip("`"), int(code)) for code, name, _ in rows if code.isdigit()}
    in_code = {
        (name, value)
        for name, value in vars(exitcodes).items()
        if re.fullmatch(r"[A-Z_]+", name) and isinstance(value, int)
    }
    assert documented == in_code


def test_the_findings_table_is_the_catalog() -> None:
    documented = {
        finding_id: severity
        for ids, severity, _ in table_rows(DOCS / "findings.md")
        for finding_id in re.findall(r"`([a-z0-9-]+)`", ids)
    }
    assert documented == CATALOG
