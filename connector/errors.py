"""Every exception target-sync raises on purpose, grouped by how the caller recovers.

::

    TargetSyncError                 base; ``exit_code`` says what the CLI returns
    ├── ConfigError                 fix the YAML or the environment, then rerun (exit 2)
    │   └── MissingExtraError       install the named extra (exit 2)
    ├── SourceError                 the warehouse query failed or returned unusable data (exit 1)
    │   └── UpstreamError           dbt's latest build of the model failed or is too old (exit 1)
    ├── StateError                  the state store is unusable (exit 1)
    │   ├── LockedError             another run holds the lock; wait for it (exit 1)
    │   └── RunInProgress           a reader met a run it must not disturb; read later (exit 1)
    ├── GuardrailError              the run looks like a broken upstream; --force to send (exit 1)
    ├── StrictRejectError           --strict and some rows were rejected; nothing sent (exit 1)
    └── TargetError                 talking to Target failed (exit 1)
        ├── TargetRetriableError    503/429/5xx/network: retried, then raised when retries run out
        └── TargetFatalError        rejected batch, bad token, other HTTP answers: not retried

    KeyboardInterrupt
    └── RunInterrupted              SIGTERM or SIGINT, raised in the main thread by the CLI's
                                    handler (exit 128 + signal number); a library caller's
                                    Ctrl-C stays a plain KeyboardInterrupt

Messages say what happened, to which object, and what happens next; they never contain a
secret. The CLI prints ``str(error)`` on one line and a traceback only with ``--debug``.
"""

from __future__ import annotations

import signal


class TargetSyncError(Exception):
    """Base class of the errors target-sync raises on purpose."""

    exit_code = 1


class ConfigError(TargetSyncError):
    """The config file, a variable it reads, or the mapping against the source is wrong."""

    exit_code = 2


class MissingExtraError(ConfigError):
    """A config needs an optional dependency that is not installed."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(
            f"{what} needs the '{extra}' extra (module '{module}' is not installed); "
            f"install it with: pip install 'target-sync[{extra}]'"
        )
        self.extra = extra


class SourceError(TargetSyncError):
    """The warehouse could not be reached, or its query failed."""


class UpstreamError(SourceError):
    """dbt's latest run of the model errored or was skipped, a test on it failed, or its last
    successful build is older than ``max_age``: nothing was read or sent."""


class StateError(TargetSyncError):
    """The state store cannot be opened, or holds something this version cannot use."""


class LockedError(StateError):
    """Another run of the same sync holds the state lock."""


class RunInProgress(StateError):
    """A read (``status``, ``plan``, ``verify``) met a run holding the state store, which it
    cannot read without disturbing; ``holder`` says who runs and how far it got."""

    def __init__(self, message: str, holder: dict[str, object]) -> None:
        super().__init__(message)
        self.holder = holder


class GuardrailError(TargetSyncError):
    """The run would remove or shrink far more than configured; nothing was sent."""


class StrictRejectError(TargetSyncError):
    """Strict mode is on and rows were rejected; nothing was sent."""


class TargetError(TargetSyncError):
    """Talking to Target failed."""


class TargetRetriableError(TargetError):
    """A transient failure (503, 429, 5xx, connection, timeout); retried with backoff."""

    def __init__(
        self, message: str, retry_after: float | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        # The busy answer's status (429, 5xx); None when the network failed.
        self.http_status = http_status


class TargetFatalError(TargetError):
    """Target refused the call (rejected batch, bad token, unexpected answer); not retried."""


class RunInterrupted(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, or SIGINT under the CLI): the run records
    itself as interrupted."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


# The last stop signal the CLI's handler received. DuckDB checks for signals inside a query
# and turns the exception a handler raises into an error of its own ("Query interrupted"), or
# drops it: what was asked is kept here, so a run can never end as if nobody had asked.
_received_signal: int | None = None


def note_signal(signal_number: int | None) -> None:
    """Remember (or, with None, forget) a stop signal the process received."""
    global _received_signal
    _received_signal = signal_number


def received_signal() -> int | None:
    """The stop signal received since :func:`note_signal` last forgot it, if any."""
    return _received_signal


def interrupt_exit_code(exc: BaseException) -> int:
    """The exit code of an interrupted process: 130 for SIGINT (Ctrl-C), 143 for SIGTERM."""
    return exc.exit_code if isinstance(exc, RunInterrupted) else 128 + signal.SIGINT


def interrupt_name(exc: BaseException) -> str:
    return signal.Signals(exc.signal_number).name if isinstance(exc, RunInterrupted) else "SIGINT"
