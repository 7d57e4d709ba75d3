"""Run wheels-etl on a pool of Celery workers (issue 12).

* :mod:`etl.workers.settings`: the broker settings (``ETL_BROKER_URL`` and friends).
* :mod:`etl.workers.app`: the Celery app (``celery -A etl.workers.app worker``).
* :mod:`etl.workers.tasks`: list -> one extract task per changed release -> one load task
  per spool file; the periodic reconcile.
* :mod:`etl.workers.runs`: ``enqueue`` (send the listing task, optionally wait for the
  run to settle) and the run notes it waits on.
* :mod:`etl.workers.reconcile`: re-enqueue what a lost message or a dead worker left.

Exactly-once comes from the same places as for the CLI: a spool file is claimed by one
loader at a time, and the Postgres ledger (committed in the file's own transaction, under
the release's advisory lock) makes a second apply a no-op.  Celery only moves work around.
"""
