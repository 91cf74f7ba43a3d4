"""The check cache: a warm run reads one small file and makes no AWS call.

Files (``marshal`` format, in a 0700 directory; secrets are never stored):

- ``verdict-<config, binary, minimum version, identity>``: the findings of the last check, before
  policy; what a warm shim run reads, and all it reads;
- ``config-<fingerprint>``: the backend configuration (secrets redacted), keyed by the stat
  of every input Terraform reads it from, so any change to them is a miss;
- ``bucket-<endpoint,region,bucket,identity>``: bucket facts, valid for the policy's TTL;
- ``version-<binary path,size,mtime>``: the Terraform version of one binary;
- ``botocore-<model file path,size,mtime>``: one of botocore's JSON models, parsed
  (docs/decisions/090-botocore-model-loader.md).
"""

from __future__ import annotations

import marshal
import os
import time

try:  # the builtin module skips OpenSSL's ~3 ms load that `import hashlib` pays
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

from tfwrap import __version__
from tfwrap.fs import atomic_write
from tfwrap.output import say
from tfwrap.terraform.commands import backend_config_values

TYPE_CHECKING = False  # typing costs ~3 ms to import on the hot path

if TYPE_CHECKING:
    from typing import Any

    from tfwrap.terraform.commands import Command

_warned = False  # the unsafe-directory warning, once per process

_ENV_INPUTS = (
    "TF_WORKSPACE",
    "TF_DATA_DIR",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_S3_ENDPOINT",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_DYNAMODB_ENDPOINT",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def directory() -> str:
    if os.environ.get("TFWRAP_CACHE_DIR"):
        return os.environ["TFWRAP_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tfwrap")


def digest(*parts: object) -> str:
    """A cache key for these parts (str, int, None, tuples and lists of them)."""
    # repr of str/int/None/tuple/list is stable: no json (and its re/enum imports) here
    return blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def identity() -> str:
    """Who is asking (bucket facts depend on it); a hash, never the key itself."""
    return digest(os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_PROFILE", ""))[:16]


def config_fingerprint(command: Command) -> str:
    """Everything the backend configuration is read from, by name and stat."""
    workdir = os.path.abspath(command.chdir or ".")
    data_dir = os.path.join(workdir, os.environ.get("TF_DATA_DIR", ".terraform"))
    try:
        names = sorted(n for n in os.listdir(workdir) if n.endswith((".tf", ".tf.json")))
    except OSError:
        names = []
    files = [(n, _stat(os.path.join(workdir, n))) for n in names]
    extra: list[object] = []
    if command.name == "init":
        args = command.effective_args()
        extra = [
            args,
            # the loader's own list: each -backend-config FILE by stat, whichever way it was written
            [(v, _stat(os.path.join(workdir, v))) for v in backend_config_values(args) if "=" not in v],
        ]
    return digest(
        __version__,
        workdir,
        command.name == "init",
        files,
        _stat(os.path.join(data_dir, "terraform.tfstate")),
        _stat(os.path.join(data_dir, "environment")),
        [os.environ.get(k, "") for k in _ENV_INPUTS],
        extra,
    )


def bucket_key(endpoint: str | None, region: str | None, bucket: str, kms_key_id: Any = None) -> str:
    """Bucket facts hold the KMS key's fact too: a stack's own ``kms_key_id`` is its own entry
    (two stacks on one bucket may write with different keys)."""
    if kms_key_id:
        return digest(endpoint, region, bucket, identity(), str(kms_key_id))
    return digest(endpoint, region, bucket, identity())


def verdict_key(command: Command, real: str, min_version: tuple[int, int, int]) -> str:
    """The whole verdict depends on the configuration, the binary, the minimum version and who
    asks: another identity may see less (a refused read is a finding), as for bucket facts."""
    return digest(
        config_fingerprint(command), version_key(real), min_version, command.name == "init", identity()
    )


def version_key(real: str) -> str:
    return digest(os.path.realpath(real), _stat(real))


def _open_directory(create: bool) -> int | None:
    """A descriptor of the cache directory, or None when it is missing or not safe to use.

     Safe: owned by this user and writable by nobody else. Another user who can write there
     could plant symlinks named like our files and make us overwrite anything we can write
    ; such a directory is not used, and said once. Everything after this works
     relative to the descriptor, so swapping the path afterwards changes nothing.
    """
    global _warned  # noqa: PLW0603 - one warning per process
    folder = directory()
    if create:
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        except OSError:
            return None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid == os.getuid() and not st.st_mode & 0o022:
        return fd
    os.close(fd)
    if not _warned:
        _warned = True
        whose = "writable by others" if st.st_uid == os.getuid() else "owned by another user"
        say(
            f"warning: cache directory {folder} is {whose}, so it is not used (every check is "
            f"a cold one); fix: chmod 700 {folder}, or set TFWRAP_CACHE_DIR to a private directory"
        )
    return None


def get(kind: str, key: str, max_age: float | None = None) -> Any:
    """A cached value, or None when absent, unreadable or older than ``max_age`` seconds."""
    dir_fd = _open_directory(create=False)
    if dir_fd is None:
        return None
    try:
        fd = os.open(f"{kind}-{key}.cache", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
        with open(fd, "rb") as f:
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return None  # only files we wrote ourselves are read back
            # loads(read()): marshal.load(file) reads item by item, 5x slower on a large file
            entry = marshal.loads(f.read())  # noqa: S302 - our own file, in our own 0700 directory
    except (OSError, ValueError, EOFError, TypeError):
        return None
    finally:
        os.close(dir_fd)
    if not isinstance(entry, dict):
        return None
    if max_age is not None and time.time() - float(entry.get("time", 0)) > max_age:
        return None
    value = entry.get("value")
    if isinstance(value, dict):
        value.setdefault("_time", entry.get("time", 0))
    return value


def fresh(value: dict[str, Any], max_age: float) -> bool:
    """Whether a value read by ``get`` is younger than ``max_age`` seconds."""
    return time.time() - float(value.get("_time", 0)) <= max_age


def put(kind: str, key: str, value: Any) -> None:
    """Store a value; a cache that cannot be written only costs speed, never a run."""
    dir_fd = _open_directory(create=True)
    if dir_fd is None:
        return
    try:
        # marshal: the stdlib's fastest reader, no imports (json costs ~7 ms of them)
        data = marshal.dumps({"time": time.time(), "value": value})
        # not durable: a cache lost in a crash only costs one cold check, an fsync every miss
        atomic_write(f"{kind}-{key}.cache", data, mode=0o600, dir_fd=dir_fd, durable=False)
    except (OSError, ValueError):  # ValueError: a value marshal cannot store
        pass
    finally:
        os.close(dir_fd)


def forget_bucket(endpoint: str | None, region: str | None, bucket: str) -> None:
    """Drop what is cached about a bucket that tfwrap itself just changed (bootstrap, migrate):
    its facts and every verdict built on them, so the next run sees the change."""
    folder = directory()
    wanted = [endpoint, region, bucket]
    _unlink(os.path.join(folder, f"bucket-{bucket_key(endpoint, region, bucket)}.cache"))
    try:
        names = [n for n in os.listdir(folder) if n.startswith("verdict-")]
    except OSError:
        return
    for name in names:
        value = get("verdict", name[len("verdict-") : -len(".cache")])
        if not isinstance(value, dict) or value.get("bucket") == wanted:
            _unlink(os.path.join(folder, name))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # gone already: nothing to forget
        return
