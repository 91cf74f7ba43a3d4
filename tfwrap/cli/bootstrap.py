"""``tfwrap bootstrap``: create a state bucket as the team's standard wants it, or bring one to it.

``tfwrap bootstrap --bucket NAME --region R [--key PATH] [--kms-key ARN]
[--log-bucket NAME [--log-prefix P]] [--workspace WS ...] [--endpoint-url URL]
[--use-path-style] [--profile P] [--check | --fix] [--write-backend FILE]``

The standard (``tfwrap.bootstrap.standard``): Object Lock enabled at creation (the team's
standard; Terraform's ``use_lockfile`` itself does not need it), versioning, default encryption
(SSE-S3, or SSE-KMS with a bucket key with ``--kms-key``), all four public access blocks, a
bucket policy denying non-TLS access, a lifecycle rule expiring noncurrent versions of the lock
object ``<key>.tflock`` (one rule per lock object: S3 lifecycle filters match prefixes, never a
``*.tflock`` suffix; ``--workspace`` adds ``env:/<ws>/<key>.tflock``), and with
``--log-bucket`` server access logging (the log bucket must already let S3 log delivery write).
On a plain ``http://`` endpoint (an S3-compatible store, a local test server) the TLS-only
statement is not added, with a note: every request through it is non-TLS, so it would lock
Terraform out of its own state. Without ``--key`` (or a FILE with a key) the bucket is taken as
shared by many states whose lock names are not known: one bucket-wide rule bounds noncurrent
versions instead (keep the newest ``--keep-versions`` (100) of every object, expire older ones
after ``--noncurrent-days`` (90); remove expired delete markers; abort multipart uploads after 7
days); ``--no-version-bound`` leaves it out.

Modes. No flag: a missing bucket is created in ``--region`` (no LocationConstraint in us-east-1,
which refuses one) and configured; an existing bucket's drift is only reported. ``--fix``: the
drift is fixed too, including Object Lock on an existing bucket (after versioning,
PutObjectLockConfiguration; irreversible). ``--check``: nothing is created, changed or written.
Nothing weaker is ever put and nothing is deleted: SSE-KMS stays SSE-KMS, an Object Lock default
retention stays, lifecycle rules and policy statements are merged, and a different KMS key or
log destination is reported, not replaced.

``--write-backend FILE`` writes the backend block (a new file: ``bucket``, ``key``, ``region``,
``encrypt``, ``kms_key_id``, ``use_lockfile = true``, and ``endpoints``/``use_path_style`` when
given), formatted as ``terraform fmt`` would; an existing file is edited in place (only changed
lines differ: ``use_lockfile = true`` set, ``dynamodb_table`` removed) and the diff shown on
stderr. Without ``--key`` the lifecycle rule uses the ``key`` of an existing FILE.

Endpoint: as Terraform reaches S3: ``--endpoint-url`` (Terraform's ``endpoints.s3``), else
``AWS_ENDPOINT_URL_S3``, ``AWS_S3_ENDPOINT``, ``AWS_ENDPOINT_URL``; credentials, profile and
time-outs (2 s connect, 3 s read, no retries) are those of the checks (``tfwrap.aws.clients``).

Output: one line per step or drift item on stderr; with ``--json`` also one document on stdout
(``bucket``, ``region``, ``mode``, ``meets_standard``, ``created``, ``changed``, ``refused``,
``drift``). ``--fix`` applies every fix it can: a refused one is reported (with the IAM action)
and the others still run, then a summary. A finding set to "off" in ``.tfwrap.toml``
(``bucket-object-lock = "off"``, ...) turns that aspect off: bootstrap does not try it.
Exit codes: 0 the bucket meets the standard (after fixing) and FILE is written; 80 drift
remains (``--check``, or an existing bucket without ``--fix``, or drift that is never fixed
automatically), or AWS refused or could not be reached (the line names the IAM action, e.g.
``access denied: s3:PutBucketPolicy``); 82 FILE cannot be read or has no ``backend "s3"``
block; 83 bad arguments: a bucket name against the DNS rules, a region mismatch, a bucket name
owned by another account, FILE naming another bucket/key/region.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tfwrap import exitcodes
from tfwrap.errors import TfwrapError
from tfwrap.output import say

if TYPE_CHECKING:
    from tfwrap.backend.edit import Edit
    from tfwrap.bootstrap.bucket import Bucket
    from tfwrap.bootstrap.standard import Standard


@dataclass(frozen=True)
class Options:
    """The command line, as click parsed it."""

    bucket: str
    region: str
    key: str | None
    kms_key: str | None
    log_bucket: str | None
    log_prefix: str | None
    workspaces: tuple[str, ...]
    endpoint_url: str | None
    use_path_style: bool
    profile: str | None
    check_only: bool
    fix: bool
    write_backend: Path | None
    keep_versions: int | None = None
    noncurrent_days: int | None = None
    no_version_bound: bool = False
    as_json: bool = False


@click.command()
@click.option("--bucket", required=True, help="The state bucket (created when missing).")
@click.option("--region", required=True, help="Its region (e.g. eu-west-1).")
@click.option("--key", help="The state key (e.g. app/terraform.tfstate): its lock gets a lifecycle rule.")
@click.option("--kms-key", help="Default encryption SSE-KMS with this key (ARN) and a bucket key.")
@click.option("--log-bucket", help="Send server access logs to this (existing) bucket.")
@click.option("--log-prefix", help="Prefix of the access logs (default: '<bucket>/').")
@click.option(
    "--workspace",
    "workspaces",
    multiple=True,
    help="Also a lifecycle rule for this workspace's lock (env:/WS/KEY.tflock); repeatable.",
)
@click.option("--endpoint-url", help="S3 endpoint, as the backend's endpoints.s3 (else AWS_ENDPOINT_URL*).")
@click.option("--use-path-style", is_flag=True, help="Path-style S3 addressing, as the backend setting.")
@click.option("--profile", help="AWS profile (default: AWS_PROFILE).")
@click.option("--check", "check_only", is_flag=True, help="Only report: create, change and write nothing.")
@click.option("--fix", is_flag=True, help="Also fix the drift of an existing bucket.")
@click.option(
    "--json", "as_json", is_flag=True, help="Also print the outcome as one JSON document on stdout."
)
@click.option(
    "--write-backend",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write or update this file's backend block (use_lockfile = true, no dynamodb_table).",
)
@click.option(
    "--keep-versions",
    type=click.IntRange(1, 100),
    help="Without --key: noncurrent versions every object keeps for good (default 100, S3's maximum).",
)
@click.option(
    "--noncurrent-days",
    type=click.IntRange(1, 36500),
    help="Without --key: days after which older noncurrent versions expire (default 90).",
)
@click.option(
    "--no-version-bound",
    is_flag=True,
    help="Without --key: add no bucket-wide rule bounding noncurrent versions.",
)
def bootstrap(**options: Any) -> None:
    """Create the state bucket as the team's standard wants it, or report and --fix its drift.

    The standard: Object Lock (the team's policy; Terraform itself does not need it),
    versioning, default encryption (SSE-S3, or SSE-KMS with a bucket key), all four public
    access blocks, a policy denying non-TLS access (not on a plain http:// endpoint, where it
    would refuse every request), a lifecycle rule expiring noncurrent versions of KEY.tflock
    (one rule per lock object: lifecycle filters match prefixes, not suffixes; without --key one
    bucket-wide rule keeping the newest 100 noncurrent versions and expiring older ones after 90
    days), and optional access logging. Nothing is weakened or deleted.

    Without --fix an existing bucket is only reported on; --check changes nothing at all.
    The endpoint is --endpoint-url, else AWS_ENDPOINT_URL_S3 / AWS_S3_ENDPOINT /
    AWS_ENDPOINT_URL, as Terraform. Lines go to stderr. Exit 0: the bucket meets the
    standard; 80: drift remains, or AWS refused (naming the IAM action) or is unreachable;
    82: FILE unreadable; 83: bad arguments (bucket name, region, name taken).
    """
    run(Options(**options))


def run(opts: Options) -> None:
    """Validate, bring the bucket to the standard, write the backend; exit 80 on drift."""
    from tfwrap.bootstrap import backend_file, standard

    _validate(opts)
    found = backend_file.existing_settings(opts.write_backend) if opts.write_backend else None
    wanted = _standard(opts, found or {})
    change = None
    if opts.write_backend is not None:  # a wrong file is refused before any AWS call
        change = backend_file.plan(
            opts.write_backend,
            backend_file.Wanted(
                opts.bucket, opts.region, opts.key, opts.kms_key, opts.endpoint_url, opts.use_path_style
            ),
        )
    mode = standard.CHECK if opts.check_only else standard.FIX if opts.fix else standard.REPORT
    bucket = _bucket(wanted, opts)
    result = standard.run(bucket, mode, say)
    if result.created or result.changed:  # the shim must see it on its next run
        from tfwrap.findings import cache

        cache.forget_bucket(bucket.endpoint, wanted.region, wanted.bucket)
    drift = list(result.drift)
    if change is not None and _write(change, opts.check_only):
        drift.append(f"{change.path} would change")
    if opts.as_json:
        _report(opts, result, drift)
    if result.changed and (drift or result.refused):
        say(f"fixed: {', '.join(result.changed)}")
    for refused in result.refused:
        say(f"not fixed: {refused}")
    if drift:
        say(f"bucket {opts.bucket}: {len(drift)} drift item(s) remain")
        raise click.exceptions.Exit(exitcodes.DRIFT)
    if result.created or result.changed:
        say(f"bucket {opts.bucket} meets the standard")
    else:
        say(f"bucket {opts.bucket} meets the standard; nothing changed")


def _report(opts: Options, result: Any, drift: list[str]) -> None:
    """The outcome on stdout (reports go to stdout, with --json)."""
    import json
    import sys

    document = {
        "bucket": opts.bucket,
        "region": opts.region,
        "mode": "check" if opts.check_only else "fix" if opts.fix else "report",
        "meets_standard": not drift,
        "created": result.created,
        "changed": result.changed,
        "refused": result.refused,
        "drift": drift,
    }
    from tfwrap.schema import versioned

    sys.stdout.write(json.dumps(versioned(document), indent=2) + "\n")


def _validate(opts: Options) -> None:
    from tfwrap.bootstrap import names

    if opts.check_only and opts.fix:
        raise TfwrapError("--check and --fix exclude each other", exitcodes.USAGE)
    problem = names.bucket_problem(opts.bucket)
    if problem:
        raise TfwrapError(
            f"bucket name {opts.bucket!r} is not valid: {problem} ({names.RULES})", exitcodes.USAGE
        )
    problem = names.region_problem(opts.region)
    if problem:
        raise TfwrapError(f"region {opts.region!r} is not valid: {problem}", exitcodes.USAGE)
    if opts.log_prefix is not None and not opts.log_bucket:
        raise TfwrapError("--log-prefix needs --log-bucket", exitcodes.USAGE)
    if opts.log_bucket:
        problem = names.bucket_problem(opts.log_bucket)
        if problem:
            raise TfwrapError(f"log bucket name {opts.log_bucket!r} is not valid: {problem}", exitcodes.USAGE)
        if opts.log_bucket == opts.bucket:
            raise TfwrapError(
                "--log-bucket must be another bucket: a bucket logging into itself never stops",
                exitcodes.USAGE,
            )


def _standard(opts: Options, found: dict[str, Any]) -> Standard:
    """What the bucket must be; the lock keys come from --key, else the backend file's key."""
    from tfwrap.bootstrap import standard

    state_key = opts.key or str(found.get("key") or "") or None
    if opts.workspaces and not state_key:
        raise TfwrapError("--workspace needs --key (or a --write-backend file with a key)", exitcodes.USAGE)
    prefix = str(found.get("workspace_key_prefix") or "env:")
    lock_keys = [f"{state_key}.tflock"] if state_key else []
    lock_keys += [f"{prefix}/{ws}/{state_key}.tflock" for ws in opts.workspaces if ws != "default"]
    bound_flags = opts.keep_versions is not None or opts.noncurrent_days is not None
    if bound_flags and (lock_keys or opts.no_version_bound):
        raise TfwrapError(
            "--keep-versions and --noncurrent-days shape the bucket-wide bound, which bootstrap adds "
            "only without --key (a key gets its lock's own rule) and never with --no-version-bound",
            exitcodes.USAGE,
        )
    return standard.Standard(
        skip=_skipped(),
        bucket=opts.bucket,
        region=opts.region,
        kms_key=opts.kms_key,
        lock_keys=tuple(dict.fromkeys(lock_keys)),
        log_bucket=opts.log_bucket,
        log_prefix=f"{opts.bucket}/" if opts.log_prefix is None else opts.log_prefix,
        keep_versions=None if opts.no_version_bound else opts.keep_versions or standard.KEEP_VERSIONS,
        noncurrent_days=opts.noncurrent_days or standard.NONCURRENT_DAYS,
        workspace_prefix=prefix,
    )


# The bucket aspects a finding severity of "off" turns off (bootstrap honours the policy).
_ASPECTS = {
    "bucket-versioning": "versioning",
    "bucket-object-lock": "Object Lock",
    "bucket-encryption": "default encryption",
    "public-access-block": "public access block",
}


def _skipped() -> tuple[str, ...]:
    from tfwrap.findings import policy

    pol = policy.load(".")
    return tuple(aspect for fid, aspect in _ASPECTS.items() if pol.severity.get(fid) == "off")


def _write(change: Edit, check_only: bool) -> int:
    """Show and (unless --check) write the backend edit; DRIFT when --check finds it pending."""

    path = change.path
    if not change.changed:
        say(f"backend: {path} already uses this bucket with use_lockfile = true")
        return 0
    click.echo(change.diff(), err=True, nl=False)
    if check_only:
        say(f"drift: {path} would change (run without --check to write it)")
        return exitcodes.DRIFT
    existed = path.exists()
    change.apply()
    if existed:
        say(f"backend: updated {path}; run `terraform init -reconfigure`")
    else:
        say(f"backend: wrote {path}")
    return 0


def _bucket(wanted: Standard, opts: Options) -> Bucket:
    """The bucket's calls, through the checks' client (same endpoint, credentials, time-outs)."""
    from tfwrap.aws import clients
    from tfwrap.backend.config import BackendConfig
    from tfwrap.bootstrap import bucket

    settings: dict[str, Any] = {"bucket": wanted.bucket, "region": wanted.region}
    if opts.endpoint_url:
        settings["endpoints"] = {"s3": opts.endpoint_url}
    if opts.use_path_style:
        settings["use_path_style"] = True
    if opts.profile:
        settings["profile"] = opts.profile
    backend = BackendConfig(
        workdir=Path.cwd(),
        data_dir=Path.cwd() / ".terraform",
        workspace="default",
        backend_type="s3",
        settings=settings,
    )
    try:
        s3 = clients.client(backend, "s3")
    except Exception as exc:  # a bad profile or role: one line, never a traceback
        raise bucket.refusal(exc, "sts:AssumeRole", wanted.bucket, backend.s3_endpoint) from exc
    return bucket.Bucket(s3, wanted, backend.s3_endpoint)
