"""target-sync: keep Adobe Target visitor profiles in step with a warehouse.

The Python API mirrors the CLI::

    import connector
    result = connector.sync("configs/vip.yaml")          # SyncResult
    report = connector.plan("configs/vip.yaml")          # PlanReport
    connector.status("configs/vip.yaml")                 # dict
    connector.reset("configs/vip.yaml")
    report = connector.verify("configs/vip.yaml")        # VerifyReport

Failures raise the exceptions of :mod:`connector.errors`. Heavy modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import SyncConfig, load_config
from .errors import (
    ConfigError,
    GuardrailError,
    LockedError,
    SourceError,
    StateError,
    StrictRejectError,
    TargetError,
    TargetFatalError,
    TargetRetriableError,
    TargetSyncError,
    UpstreamError,
)

if TYPE_CHECKING:
    from .operations import PlanReport, plan, reset, status, validate
    from .pipeline import sync
    from .result import SyncResult
    from .verify import VerifyReport, verify

__all__ = [
    "ConfigError",
    "GuardrailError",
    "LockedError",
    "PlanReport",
    "SourceError",
    "StateError",
    "StrictRejectError",
    "SyncConfig",
    "SyncResult",
    "TargetError",
    "TargetFatalError",
    "TargetRetriableError",
    "TargetSyncError",
    "UpstreamError",
    "VerifyReport",
    "load_config",
    "plan",
    "reset",
    "status",
    "sync",
    "validate",
    "verify",
]

_LAZY = {
    "sync": "connector.pipeline",
    "SyncResult": "connector.result",
    "plan": "connector.operations",
    "PlanReport": "connector.operations",
    "status": "connector.operations",
    "reset": "connector.operations",
    "validate": "connector.operations",
    "verify": "connector.verify",
    "VerifyReport": "connector.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'connector' has no attribute {name!r}")
