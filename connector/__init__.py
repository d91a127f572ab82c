"""target-sync: keep Adobe Target visitor profiles in step with a warehouse.

The Python API mirrors the CLI::

    import connector
    result = connector.sync("configs/vip.yaml")          # SyncResult
    report = connector.plan("configs/vip.yaml")          # PlanReport
    connector.status("configs/vip.yaml")                 # dict
    connector.reset("configs/vip.yaml")

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
    "load_config",
    "plan",
    "reset",
    "status",
    "sync",
    "validate",
]

_LAZY = {
    "sync": "connector.pipeline",
    "SyncResult": "connector.result",
    "plan": "connector.operations",
    "PlanReport": "connector.operations",
    "status": "connector.operations",
    "reset": "connector.operations",
    "validate": "connector.operations",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'connector' has no attribute {name!r}")
