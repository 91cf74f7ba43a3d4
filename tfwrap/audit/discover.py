"""Finding the stacks of a repository: root modules with ``backend "s3"`` and Terragrunt
``remote_state { backend = "s3" }`` files, outside ``.terraform/``, ``.terragrunt-cache/``,
``.git/`` and whatever ``.gitignore`` ignores (git itself is asked when there is a repository).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfwrap import exitcodes
from tfwrap.backend import config as backend_config
from tfwrap.backend import scan
from tfwrap.errors import TfwrapError

SKIPPED_DIRS = frozenset({".terraform", ".terragrunt-cache", ".git"})
TERRAGRUNT_FILES = ("terragrunt.hcl", "root.hcl")

Where = tuple[Path, int, int]  # file, line, column


@dataclass
class Stack:
    """One state: a root module directory, or one Terragrunt ``remote_state`` file."""

    path: Path  # the directory
    kind: str  # "terraform" | "terragrunt"
    backend: backend_config.BackendConfig
    block: Where  # the backend block (or remote_state block)
    places: dict[str, Where] = field(default_factory=dict)  # setting -> where it is written
    required_versions: list[tuple[Any, Where]] = field(default_factory=list)
    terraform_block: Where | None = None  # where to add required_version
    error: str | None = None  # the configuration could not be read

    def where(self, setting: str | None) -> Where:
        """Where ``setting`` is written, or the block when it is not."""
        return self.places.get(setting or "", self.block)


def candidate_files(paths: list[Path]) -> list[Path]:
    """Every ``.tf``, ``.tf.json``, ``terragrunt.hcl`` and ``root.hcl`` under ``paths``.

    A file given by name stands for its own directory's files (pre-commit passes the files it
    changed: the stack is the directory they belong to).
    """
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for one in _tree(path):
                found[one] = None
        elif path.exists():
            for one in sorted(path.parent.iterdir()):
                if one.is_file() and _wanted(one.name):
                    found[one] = None
        else:
            raise TfwrapError(f"{path} does not exist; pass directories or files to audit", exitcodes.USAGE)
    return list(found)


def _wanted(name: str) -> bool:
    return name.endswith((".tf", ".tf.json")) or name in TERRAGRUNT_FILES


def _tree(root: Path) -> list[Path]:
    listed = _git_files(root)
    if listed is None:
        return _walk(root)
    return [
        Path(root, rel)
        for rel in listed
        if _wanted(os.path.basename(rel)) and not SKIPPED_DIRS.intersection(rel.split("/")[:-1])
    ]


def _git_files(root: Path) -> list[str] | None:
    """Tracked and untracked-but-not-ignored files as git sees them (None: not a repository)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=False,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    names = sorted({n for n in done.stdout.decode(errors="surrogateescape").split("\0") if n})
    return [n for n in names if _wanted(os.path.basename(n)) and os.path.isfile(os.path.join(root, n))]


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        out.extend(Path(directory) / f for f in sorted(files) if _wanted(f))
    return out


def stacks(files: list[Path]) -> list[Stack]:
    """The stacks these files define, in path order (large trees: read on every core)."""
    by_dir: dict[Path, list[Path]] = {}
    for f in files:
        by_dir.setdefault(f.parent, []).append(f)
    groups = [(d, by_dir[d]) for d in sorted(by_dir)]
    workers = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    if workers < 2 or len(groups) < 400:
        return _stacks(groups)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [groups[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        found = [stack for part in pool.map(_stacks, chunks) for stack in part]
    return sorted(found, key=lambda s: (s.path, str(s.block[0])))


def _stacks(groups: list[tuple[Path, list[Path]]]) -> list[Stack]:
    found: list[Stack] = []
    for directory, names in groups:
        tf = [f for f in names if f.name.endswith((".tf", ".tf.json"))]
        if tf:
            stack = _terraform_stack(directory, tf)
            if stack is not None:
                found.append(stack)
        found.extend(s for f in names if f.name in TERRAGRUNT_FILES for s in _terragrunt_stacks(f))
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _terraform_stack(directory: Path, files: list[Path]) -> Stack | None:
    texts = {f: _read(f) for f in files}
    if not any(t and "backend" in t for t in texts.values()):
        return None  # most directories: modules, no backend at all
    try:
        backend = backend_config.load_files(directory, {f: t for f, t in texts.items() if t is not None})
    except TfwrapError as exc:
        block_file = next(f for f, t in texts.items() if t and "backend" in t)
        empty = backend_config.BackendConfig(directory, directory / ".terraform", "default", "s3")
        return Stack(directory, "terraform", empty, (block_file, 1, 1), error=exc.message)
    if not backend.is_s3:
        return None
    files_sources = [s for s in backend.sources if s.backend_type and s.places]
    home = files_sources[-1] if files_sources else None
    block_line, block_column = home.places[""] if home else (1, 1)
    block_file = directory / home.where if home else directory
    stack = Stack(directory, "terraform", backend, (block_file, block_line, block_column))
    for source in files_sources:  # later files win, as Terraform merges overrides
        for name, (line, column) in source.places.items():
            if name:
                stack.places[name] = (directory / source.where, line, column)
    for path, text in texts.items():
        if not text or "terraform" not in text:
            continue
        try:
            blocks = scan.scan_json(text) if path.name.endswith(".json") else scan.scan(text, settings=False)
        except (scan.ScanError, ValueError):
            continue  # the backend file parsed; Terraform reports the rest
        for block in blocks:
            if block.required_version is not None and block.required_version_place:
                stack.required_versions.append(
                    (block.required_version, (path, *block.required_version_place))
                )
            if block.backends or stack.terraform_block is None:
                stack.terraform_block = (path, block.line, block.column)
    return stack


def _terragrunt_stacks(path: Path) -> list[Stack]:
    text = _read(path)
    if not text or "remote_state" not in text:
        return []
    directory = path.parent
    try:
        blocks = scan.scan(text, keyword="remote_state")
    except scan.ScanError as exc:
        empty = backend_config.BackendConfig(directory, directory / ".terraform", "default", "s3")
        return [Stack(directory, "terragrunt", empty, (path, 1, 1), error=f"cannot parse {path.name}: {exc}")]
    found = []
    for outer in blocks:
        for block in outer.backends:
            if block.settings.get("backend") != "s3":
                continue
            settings = block.settings.get("config")
            settings = dict(settings) if isinstance(settings, dict) else {}
            places = {
                k.removeprefix("config."): v for k, v in block.places.items() if k.startswith("config.")
            }
            source = backend_config.Source(
                path.name, "s3", settings, {"": (block.line, block.column), **places}
            )
            backend = backend_config.BackendConfig(
                directory,
                directory / ".terraform",
                "default",
                "s3",
                backend_config.normalise(settings),
                [source],
            )
            stack = Stack(directory, "terragrunt", backend, (path, block.line, block.column))
            stack.places = {k: (path, *v) for k, v in places.items()}
            found.append(stack)
    return found
