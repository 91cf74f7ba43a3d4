"""The shim's hot path stays light, and the sh shim and Python agree on pass-through."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.world import Tools, run
from tfwrap.terraform import commands

SHIM = Path(__file__).resolve().parents[1] / "shims" / "terraform"


def test_importing_the_shim_path_loads_nothing_heavy() -> None:
    code = (
        "import sys, tfwrap.shim.main, tfwrap.findings.policy;"
        "heavy = {'boto3', 'botocore', 'click', 'structlog', 'hcl2', 'psutil',"
        " 'typing', 'subprocess', 'pathlib'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_tfwrap_command_imports_only_its_own_module() -> None:
    # Every tfwrap process in CI and on a laptop pays for what its command imports: `shim
    # status` must not load the audit scanner, the migration or botocore.
    code = (
        "import sys; from tfwrap.cli import main; code = main(['shim', 'status', '--help']);"
        "print(code, sorted({'.'.join(m.split('.')[:3]) for m in sys.modules"
        " if m.startswith(('tfwrap.cli.', 'botocore'))}))"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 ['tfwrap.cli.shim']", out.stdout


def test_pass_through_lists_agree() -> None:
    text = SHIM.read_text()
    case_line = next(ln for ln in text.splitlines() if ln.startswith('"" | version'))
    names = {n.strip() for n in case_line.split(")")[0].split("|")}
    assert {"" if n == '""' else n for n in names} == set(commands.PASS_THROUGH)
    providers = re.search(r"providers\) case \$sub2 in ([^)]*)\)", text)
    assert providers and {n.strip() for n in providers.group(1).split("|")} == set(
        commands.PASS_THROUGH_PROVIDERS
    )
    helps = re.search(r"\n\s+(-help[^)]*)\) exec", text)
    assert helps and {n.strip() for n in helps.group(1).split("|")} == set(commands.HELP_FLAGS)


def test_pass_through_runs_no_python(tmp_path: Path, tools: Tools, env: dict[str, str]) -> None:
    """With a Python that cannot start, pass-through commands still work; checked ones refuse."""
    broken = {**env, "TFWRAP_PYTHON": str(tmp_path / "no-python")}
    for argv in (["version"], ["fmt", "-check"], ["validate", "-help"], ["-chdir=.", "version"]):
        result = run(["terraform", *argv], tmp_path, broken)
        assert result.returncode in (0, 3), (argv, result.stderr)  # fmt -check: 0 or 3
        assert "tfwrap" not in result.stderr
    checked = run(["terraform", "plan"], tmp_path, broken)
    assert checked.returncode == 88 and "cannot find tfwrap's Python" in checked.stderr


def test_classification() -> None:
    assert commands.parse(["-chdir=x", "plan", "-out=p"]).kind == commands.KIND_CHECKED
    assert commands.parse(["providers", "lock"]).kind == commands.KIND_PASS_THROUGH
    assert commands.parse(["providers"]).kind == commands.KIND_CHECKED
    assert commands.parse(["apply", "-help"]).kind == commands.KIND_PASS_THROUGH
    assert commands.parse(["force-unlock", "x"]).kind == commands.KIND_RECOVERY
    assert commands.parse(["state", "list"]).takes_lock is False
    assert commands.parse(["state", "rm", "a.b"]).takes_lock is True
    assert commands.parse(["apply", "-lock=false"]).takes_lock is False
