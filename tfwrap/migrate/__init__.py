"""``tfwrap migrate``: DynamoDB locking to S3 native locking, one verified step at a time.

The migration is the S3 native locking guide's Part 2 done without stopping the world:

- ``dual`` adds ``use_lockfile = true`` beside ``dynamodb_table`` (Terraform takes both
  locks, so pipelines still on the old configuration stay excluded);
- ``finalize`` (after a soak) removes ``dynamodb_table`` and this configuration's
  DynamoDB digest items (``<bucket>/<state key>-md5``), which go stale once Terraform
  stops writing them;
- ``cleanup-table`` deletes the lock table once nothing else uses it;
- ``rollback`` goes back to DynamoDB locking from either phase, digest refreshed.

Each step is printed before it is done, verified after, and recorded in a journal next to
the state in the bucket (``journal.py``), so an interrupted run resumes where it stopped, from
any checkout, and a step recorded as done is never repeated. Where each part lives:
``run`` (entry points), ``migration`` (the context), ``step`` (running a phase), ``common``,
``dual``, ``finalize``, ``rollback``, ``cleanup`` (the phases' steps), ``status``.
"""
