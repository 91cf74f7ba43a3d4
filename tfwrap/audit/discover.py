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
TERRAGRUNT_FILES = ("terragrunt.hcl",)  # a unit; root.hcl, common.hcl ... are read when included

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
    backend_file: Path | None = None  # the -backend-config file this state's settings come from
    notes: list[tuple[str, str, Where]] = field(default_factory=list)  # not evaluated: what, as written
    how: str = ""  # Terragrunt: "remote_state" or "generate"

    @property
    def partial(self) -> bool:
        """The block names no bucket and no -backend-config file fills it."""
        return self.kind == "terraform" and not self.error and "bucket" not in self.backend.settings

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
            directory = path.parent
            if (
                backend_config.is_backend_file(path.name)
                and directory.name in backend_config.BACKEND_FILE_DIRS
            ):
                directory = directory.parent  # backends/prod.tfbackend serves the stack above it
            if path.name.endswith(".hcl") and path.name not in TERRAGRUNT_FILES:
                for one in _tree(directory):  # a file units include: every unit below it
                    found[one] = None
                continue
            for one in sorted(directory.iterdir()):
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


def stacks(files: list[Path], backend_files: list[Path] | None = None) -> list[Stack]:
    """The stacks these files define, one per state, in path order (large trees: every core).

    ``backend_files``: the -backend-config files given on the command line; they serve every
    partial backend instead of the files found beside it.
    """
    by_dir: dict[Path, list[Path]] = {}
    for f in files:
        by_dir.setdefault(f.parent, []).append(f)
    groups = [(d, by_dir[d]) for d in sorted(by_dir)]
    workers = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    explicit = list(backend_files) if backend_files else None
    if workers < 2 or len(groups) < 400:
        found, parents = _stacks(groups, explicit)
    else:
        import functools
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunks = [groups[i::workers] for i in range(workers)]
        found, parents = [], set()
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for part, used in pool.map(functools.partial(_stacks, explicit=explicit), chunks):
                found.extend(part)
                parents |= used
    # A terragrunt.hcl another unit includes is that unit's parent configuration, not a unit.
    from tfwrap.backend.terragrunt import absolute

    found = [s for s in found if s.kind != "terragrunt" or absolute(s.path / "terragrunt.hcl") not in parents]
    return sorted(found, key=lambda s: (s.path, str(s.backend_file or ""), str(s.block[0])))


def _stacks(
    groups: list[tuple[Path, list[Path]]], explicit: list[Path] | None = None
) -> tuple[list[Stack], set[Path]]:
    found: list[Stack] = []
    parents: set[Path] = set()
    for directory, names in groups:
        unit = next((f for f in names if f.name in TERRAGRUNT_FILES), None)
        if unit is not None:
            stack, used = _terragrunt_unit(unit)
            parents.update(used)
            if stack is not None:
                found.append(stack)
                continue  # the unit's backend "s3" {} (if any) is the one remote_state fills
        tf = [f for f in names if f.name.endswith((".tf", ".tf.json"))]
        if tf:
            found.extend(_terraform_stacks(directory, tf, explicit))
    return found, parents


def _read(path: Path) -> str | None:
    try:
        return backend_config.read_text(path)
    except (OSError, UnicodeDecodeError):
        return None


def _terraform_stacks(directory: Path, files: list[Path], explicit: list[Path] | None) -> list[Stack]:
    """The root module's stack, or one per -backend-config file when its block is partial."""
    stack = _terraform_stack(directory, files)
    if stack is None or stack.error:
        return [stack] if stack else []
    settings = stack.backend.settings
    if "bucket" in settings and "key" in settings:
        return [stack]
    serving = explicit if explicit is not None else backend_config.backend_files(directory)
    out = []
    for path in serving:
        one = Stack(
            directory,
            "terraform",
            stack.backend,
            stack.block,
            dict(stack.places),
            stack.required_versions,
            stack.terraform_block,
            backend_file=path,
        )
        try:
            one.backend = backend_config.with_backend_file(stack.backend, path)
        except TfwrapError as exc:
            one.error = exc.message
            one.block = (path, 1, 1)
            out.append(one)
            continue
        source = next(s for s in one.backend.sources if s.where.startswith("-backend-config="))
        for name, (line, column) in source.places.items():
            one.places[name] = (path, line, column)
        out.append(one)
    return out or [stack]


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


def _terragrunt_unit(path: Path) -> tuple[Stack | None, list[Path]]:
    """A unit's stack (None: no S3 backend and nothing left unread) and the files it includes."""
    from tfwrap.backend import terragrunt

    directory = path.parent
    resolved = terragrunt.resolve(path)
    empty = backend_config.BackendConfig(directory, directory / ".terraform", "default", "s3")
    if resolved.error:
        return Stack(directory, "terragrunt", empty, (path, 1, 1), error=resolved.error), resolved.parents
    if resolved.block is None or resolved.backend_type != "s3":
        if resolved.notes and resolved.block is None:
            stack = Stack(directory, "terragrunt", empty, resolved.notes[0][2], notes=resolved.notes)
            return stack, resolved.parents
        return None, resolved.parents
    block_file, line, column = resolved.block
    source = backend_config.Source(
        os.path.relpath(block_file, directory),
        "s3",
        resolved.settings,
        {"": (line, column), **{k: (v[1], v[2]) for k, v in resolved.places.items()}},
    )
    backend = backend_config.BackendConfig(
        directory,
        directory / ".terraform",
        "default",
        "s3",
        backend_config.normalise(resolved.settings),
        [source],
    )
    stack = Stack(
        directory, "terragrunt", backend, resolved.block, dict(resolved.places), notes=resolved.notes
    )
    stack.how = resolved.how
    return stack, resolved.parents
