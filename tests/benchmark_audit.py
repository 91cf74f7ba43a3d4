"""Benchmark sections for ``tfwrap audit`` on a 2,000-stack monorepo and for a cold check
beside a 5 MB ``.tf`` of resources named ``backend``). Used by ``benchmark.py``."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root

from tests.support.world import backend_block, make_bucket, write_config

# A werkzeug access line; 4xx lines are coloured.
_REQUEST = re.compile(r'"(?:\x1b\[[\d;]*m)?([A-Z]+) (\S+) HTTP/[\d.]+(?:\x1b\[[\d;]*m)?" (\d{3})')
BUCKET_CALLS = 6  # the guard's reads per bucket: versioning, Object Lock, encryption, public access,
# policy, logging
CPU_SECONDS: list[float] = []  # CPU (user + sys) of the last timed_run, its workers included


def big_resources(size_mb: float = 5.0) -> str:
    """``resource "aws_lb_target_group" "backend..."``-like blocks (built-in type: no provider)."""
    one = (
        'resource "terraform_data" "backend{i}" {{\n'
        '  input = {{ name = "backend-{i}", port = 8080, path = "/backend/health" }}\n'
        '  triggers_replace = ["backend ${{terraform.workspace}}"]  # backend {{ }}\n'
        "}}\n"
    )
    parts, size, i = [], 0, 0
    while size < size_mb * 1_000_000:
        text = one.format(i=i)
        parts.append(text)
        size += len(text)
        i += 1
    return "".join(parts)


def big_tf_dirs(
    url: str, real: Path, env: dict[str, str], tmp: Path, check: Callable[..., None]
) -> list[Path]:
    """Two initialised stacks beside a 5 MB file: backend in its own file, and at the file's end."""
    resources = big_resources()
    dirs = []
    for name in ("big-tf-separate", "big-tf-at-end"):
        bucket = make_bucket(url, f"tfstate-{name}-{uuid.uuid4().hex[:8]}")
        work = write_config(tmp / name, url, bucket)
        check([str(real), "init", "-input=false", "-no-color"], work, env)
        check([str(real), "apply", "-auto-approve", "-input=false", "-no-color"], work, env)
        if name.endswith("separate"):
            (work / "resources.tf").write_text(resources)
        else:
            block = (work / "backend.tf").read_text()
            (work / "backend.tf").unlink()
            (work / "resources.tf").write_text(resources + block)
        dirs.append(work)
    return dirs


def _settings(url: str) -> str:
    return (
        f'endpoints = {{ s3 = "{url}", dynamodb = "{url}" }}\n'
        "use_path_style = true\nskip_credentials_validation = true\n"
        "skip_requesting_account_id = true\nskip_metadata_api_check = true\n"
    )


def _terragrunt_parents(root: Path, url: str, buckets: list[str]) -> None:
    """``stacks/root.hcl`` (remote_state) and ``stacks/gen.hcl`` (a ``generate "backend"`` heredoc)."""
    endpoints = f'endpoints = {{ s3 = "{url}", dynamodb = "{url}" }}'
    (root / "stacks" / "root.hcl").write_text(
        'remote_state {\n  backend = "s3"\n  config = {\n'
        f'    bucket = "{buckets[0]}"\n'
        '    key = "${path_relative_to_include()}/terraform.tfstate"\n'
        '    region = "us-east-1"\n    encrypt = true\n    use_lockfile = true\n'
        f"    {endpoints}\n    use_path_style = true\n    skip_credentials_validation = true\n"
        "    skip_requesting_account_id = true\n    skip_metadata_api_check = true\n  }\n}\n"
    )
    block = backend_block(
        url, buckets[1], key="${path_relative_to_include()}/terraform.tfstate", encrypt=True
    )
    block = block.replace(
        "    use_lockfile = true\n", '    use_lockfile = true\n    dynamodb_table = "locks"\n'
    )
    (root / "stacks" / "gen.hcl").write_text(
        f'generate "backend" {{\n  path = "backend.tf"\n  if_exists = "overwrite_terragrunt"\n'
        f"  contents = <<EOF\n{block}EOF\n}}\n"
    )


def monorepo(root: Path, url: str, stacks: int, buckets: list[str]) -> list[Path]:
    """``stacks`` directories, a third each: root modules with a full backend block (a backend
    file, two resource files and a module call), partial ``backend "s3" {}`` root modules with
    three environment files, and Terragrunt units including ``root.hcl`` (``remote_state``) or
    ``gen.hcl`` (``generate "backend"``). Returns the directories with a full block."""
    (root / "modules" / "net").mkdir(parents=True)
    (root / "modules" / "net" / "main.tf").write_text(
        'variable "name" {}\nresource "terraform_data" "n" {}\n'
    )
    (root / "stacks").mkdir()
    _terragrunt_parents(root, url, buckets)
    dirs = []
    for i in range(stacks):
        work = root / "stacks" / f"team{i % 20:02d}" / f"app{i:04d}"
        work.mkdir(parents=True)
        if i % 3 == 2:  # a Terragrunt unit
            parent = "root.hcl" if i % 2 else "gen.hcl"
            (work / "terragrunt.hcl").write_text(
                f'include "root" {{\n  path = find_in_parent_folders("{parent}")\n}}\n'
                'terraform {\n  source = "../../../modules/net"\n}\n'
                f'inputs = {{\n  name = "app{i}"\n}}\n'
            )
            continue
        bucket = buckets[i % len(buckets)]
        backend = backend_block(url, bucket, key=f"app{i}/terraform.tfstate", encrypt=True)
        extra = "" if i % 5 else '    dynamodb_table = "locks"\n'  # a fifth still on DynamoDB
        backend = backend.replace("    use_lockfile = true\n", "    use_lockfile = true\n" + extra)
        backend = backend.replace("terraform {\n", 'terraform {\n  required_version = ">= 1.11"\n', 1)
        if i % 3 == 1:  # partial: the settings live in one file per environment
            backend = 'terraform {\n  required_version = ">= 1.11"\n  backend "s3" {}\n}\n'
            for env in ("prod", "staging", "dev"):
                (work / f"{env}.s3.tfbackend").write_text(
                    f'bucket = "{bucket}"\nkey = "{env}/app{i}.tfstate"\nregion = "us-east-1"\n'
                    f"encrypt = true\nuse_lockfile = true\n{extra.strip()}\n{_settings(url)}"
                )
        (work / "backend.tf").write_text(backend)
        (work / "main.tf").write_text(
            f'module "net" {{\n  source = "../../../modules/net"\n  name   = "app{i}"\n}}\n'
            f'resource "terraform_data" "backend" {{\n  input = "backend-{i}"\n}}\n'
        )
        (work / "data.tf").write_text(
            f'resource "terraform_data" "db" {{\n  input = {{ name = "db-{i}", tier = "backend" }}\n}}\n'
            'output "id" {\n  value = terraform_data.db.id\n}\n'
        )
        if i % 3 == 0:
            dirs.append(work)
    return dirs


def timed_run(
    argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0, 80)
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process (``wait4``: this child only)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    CPU_SECONDS[:] = [usage.ru_utime + usage.ru_stime]
    proc.returncode = code
    if code not in ok:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        sys.exit(f"benchmark: {' '.join(argv)} exited {code}:\n{err}")
    if proc.stderr:
        proc.stderr.close()
    return elapsed, int(usage.ru_maxrss)


def requests_since(log: Path, offset: int) -> list[str]:
    text = log.read_bytes()[offset:].decode(errors="replace")
    return [f"{m.group(1)} {m.group(2)}" for line in text.splitlines() if (m := _REQUEST.search(line))]


def checkov() -> list[str] | None:
    """The checkov command when installed (PATH, this venv, or $CHECKOV)."""
    found = os.environ.get("CHECKOV") or shutil.which("checkov")
    beside = Path(sys.executable).parent / "checkov"
    if not found and beside.is_file():
        found = str(beside)
    return [found] if found else None


def audit_section(
    url: str, log: Path, env: dict[str, str], tmp: Path, stacks: int, sample: int, runs: int
) -> list[tuple[str, str, str, bool]]:
    """Rows (case, figure, target, passed) for the audit; printed by the caller."""
    tfwrap = str(Path(sys.executable).parent / "tfwrap")
    buckets = [make_bucket(url, f"tfstate-audit-{n:02d}-{uuid.uuid4().hex[:8]}") for n in range(40)]
    root = tmp / "monorepo"
    dirs = monorepo(root, url, stacks, buckets)
    cache = Path(env["TFWRAP_CACHE_DIR"])
    rows: list[tuple[str, str, str, bool]] = []

    offline, cpu = [], []
    peak = 0
    for _ in range(runs):
        seconds, rss = timed_run([tfwrap, "audit", "--offline", "--format", "json"], root, env)
        offline.append(seconds)
        cpu.append(CPU_SECONDS[0])
        peak = max(peak, rss)
    audit_s = statistics.median(offline)
    rows.append(
        (
            f"audit --offline, {stacks} stacks (a third partial x 3 files, a third Terragrunt)",
            f"{audit_s:.2f} s wall, {statistics.median(cpu):.2f} s CPU (median of {runs};"
            f" load {os.getloadavg()[0]:.1f})",
            "<= 5 s",
            audit_s <= 5,
        )
    )

    # tfwrap check per directory: a sample, each with the cache left by the ones before (as CI would)
    shutil.rmtree(cache, ignore_errors=True)
    step = max(1, len(dirs) // sample)
    per_dir = [timed_run([tfwrap, "check", "--init"], d, env)[0] for d in dirs[::step][:sample]]
    check_total = statistics.median(per_dir) * stacks  # one check per directory, whatever its layout
    ratio = check_total / audit_s
    rows.append(
        (
            "tfwrap check in each directory",
            f"{statistics.median(per_dir) * 1000:.0f} ms/dir x {stacks} = {check_total:.0f} s "
            f"(median of {len(per_dir)} dirs, extrapolated); audit is {ratio:.0f}x faster",
            ">= 20x",
            ratio >= 20,
        )
    )
    tool = checkov()
    if tool:
        seconds, _ = timed_run(
            [*tool, "-d", str(root), "--framework", "terraform", "--quiet", "--compact", "-o", "json"],
            root,
            {**env, "PATH": os.environ.get("PATH", "")},
            ok=(0, 1),
        )
        rows.append(
            (
                "checkov -d DIR --framework terraform",
                f"{seconds:.1f} s; audit --offline is {seconds / audit_s:.0f}x faster",
                "-",
                True,
            )
        )
    else:
        rows.append(
            ("checkov -d DIR --framework terraform", "not installed (pip install '.[benchmark]')", "-", True)
        )

    # online: every bucket asked once, whatever the number of stacks
    shutil.rmtree(cache, ignore_errors=True)
    offset = log.stat().st_size
    seconds, rss = timed_run([tfwrap, "audit", "--format", "json", "--jobs", "8"], root, env)
    peak = max(peak, rss)
    seen = [r for r in requests_since(log, offset) if "tfstate-audit-" in r]
    expected = len(buckets) * BUCKET_CALLS
    rows.append(
        (
            f"audit online, {stacks} stacks / {len(buckets)} buckets",
            f"{len(seen)} S3 requests in {seconds:.2f} s",
            f"= {expected} req",
            len(seen) == expected,
        )
    )
    rows.append(("audit peak memory (max RSS)", f"{peak / 1024:.0f} MB", "< 300 MB", peak / 1024 < 300))
    return rows


def print_rows(rows: list[tuple[str, str, str, bool]]) -> None:
    head = f"{'case':<44} {'measured':<72} {'target':>10}  result"
    print(head)
    print("-" * len(head))
    for case, figure, target, passed in rows:
        print(f"{case:<44} {figure:<72} {target:>10}  {'PASS' if passed else 'MISS'}")
