"""The one error tree of wheels-etl.

Every failure the tool reports is an :class:`EtlError`.  Two questions decide what happens
to it, and the class answers both:

* *which stage* failed: :class:`FetchError` (talking to the source), :class:`SpoolError`
  (the local spool), :class:`LoadError` (talking to Postgres), :class:`ConfigError`;
* *whether trying again can help*: the class attribute :attr:`EtlError.retryable`.  It is
  true for the ``Transient*`` branches, :class:`SpoolUnavailableError` and
  :class:`BrokerError` (something we depend on is down: retried with backoff, exit 3) and
  false everywhere else (a fatal fetch error fails its release, a fatal load error sends
  its spool file to ``failed/``, a :class:`ConfigError` stops before anything is tried).
  The CLI's exit codes, the Celery tasks' retries and :func:`etl.db.connect.classify` all
  read this one attribute; nothing lists retryable classes by hand.

Messages name what they are about (the release, the URL, the spool file), so a one-line
report is enough to act on.  The exit code of a command that ends on an error follows from
its class too (:attr:`EtlError.exit_code`, the one map, also sent with a worker task's
error so that ``enqueue --wait`` exits as the command would); only ``etl/cli.py`` exits.
"""

from __future__ import annotations

from typing import ClassVar

#: The command line's exit codes (``wheels-etl --help`` lists them; only ``etl/cli.py``
#: exits).  0 all well, 1 some releases or files failed, 2 bad usage or settings, 3 the
#: source, database, object store or broker unavailable, 4 the spool's disk full.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_DISK_FULL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


class EtlError(Exception):
    """Root of every error wheels-etl raises on purpose."""

    #: Can the same work succeed later, unchanged?  A property of the class (subclasses
    #: set it), never of one instance: what to do with an error follows from its type.
    retryable: ClassVar[bool] = False

    #: The exit code of this branch when it is not derived from :attr:`retryable` (set by
    #: :class:`ConfigError` and :class:`SpoolFullError` only).
    fixed_exit_code: ClassVar[int | None] = None

    @property
    def exit_code(self) -> int:
        """The exit code of a command that ends on this error, from its class alone: 2 bad
        settings (:class:`ConfigError`), 4 spool disk full (:class:`SpoolFullError`), 3
        something we depend on is down (:attr:`retryable`), 1 otherwise (a release or a
        file failed)."""
        if self.fixed_exit_code is not None:
            return self.fixed_exit_code
        return EXIT_UNAVAILABLE if self.retryable else EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        release: str | None = None,
        url: str | None = None,
        path: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.release = release
        self.url = url
        self.path = path
        self.sqlstate = sqlstate

    def __str__(self) -> str:
        parts: list[str] = []
        if self.release:
            parts.append(f"release {self.release}")
        if self.path:
            parts.append(f"file {self.path}")
        if self.url:
            parts.append(f"url {self.url}")
        prefix = ": ".join(parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.sqlstate:
            text += f" [SQLSTATE {self.sqlstate}]"
        return text


class ConfigError(EtlError):
    """Bad settings or arguments: nothing was attempted."""

    fixed_exit_code = EXIT_USAGE


# --- source side ---------------------------------------------------------------------


class FetchError(EtlError):
    """Reading the source failed."""


class TransientFetchError(FetchError):
    """Connection error, timeout, 429/502/503/504: worth retrying."""

    retryable = True


class FatalFetchError(FetchError):
    """The source answered, and the answer is wrong (4xx, bad JSON, bad identifier, ...).

    Fatal for the release that needed the document, never for the whole run.
    """


class ProtocolError(FatalFetchError):
    """The source breaks the wheel-collections protocol (e.g. unknown index ``format``)."""


# --- spool ---------------------------------------------------------------------------


class SpoolError(EtlError):
    """The spool folder could not be read or written."""


class SpoolFullError(SpoolError):
    """The spool's disk is full; the message names the folder and the space needed."""

    fixed_exit_code = EXIT_DISK_FULL


class SpoolUnavailableError(SpoolError):
    """The spool's object store did not answer (down, unreachable): worth retrying later.

    Nothing is lost: a file being written is not published, a claimed file stays in
    ``loading`` until its lease lapses (``Spool.reconcile`` puts it back in ``ready``).
    """

    retryable = True


class SpoolFileError(SpoolError):
    """A spool file was rejected: it goes to ``failed/`` with its error sidecar."""


class CorruptSpoolFileError(SpoolFileError):
    """A spool file is corrupt, truncated, of an unknown schema version, or not ours (its
    name and footer disagree).  It is quarantined: kept in ``failed/``, not counted as
    spooled, so the next extract fetches its release again."""


class LoaderKilledError(SpoolFileError):
    """A spool file whose loaders died holding it, several times in a row (killed, e.g. out
    of memory): it goes to ``failed`` instead of being loaded again.  Not *corrupt*: its
    release is not fetched again, it waits for a replay."""


# --- database side -------------------------------------------------------------------


class LoadError(EtlError):
    """Loading a spool file into Postgres failed."""


class TransientLoadError(LoadError):
    """Postgres went away (restart, dropped connection, too many clients): retry later.

    The spool file goes back to ``ready``, never to ``failed``.
    """

    retryable = True


class FatalLoadError(LoadError):
    """Postgres rejected the file's content: the file goes to ``failed`` with a sidecar."""


# --- workers (etl.workers) -----------------------------------------------------------


class BrokerError(EtlError):
    """The Celery broker (``ETL_BROKER_URL``) could not be reached: nothing was sent."""

    retryable = True
