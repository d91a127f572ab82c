"""The emulator's admin API under ``/_emulator/``: its state and switches, over HTTP (JSON).

=========================================================  ======================================
``GET  /_emulator/state``                                  counters and an upload summary
``GET  /_emulator/profiles?type=thirdPartyId``             every profile of one id type
``GET|POST /_emulator/faults``                             read / set fault switches
``POST /_emulator/reset``                                  forget everything, faults off
=========================================================  ======================================

These calls are not Target's: they are neither counted as API calls nor rate-limited, and need
no token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .answers import Reply, json_answer
from .batchfile import ID_TYPES

if TYPE_CHECKING:
    from .app import Request, TargetApp

__all__ = ["answer"]

_ENDPOINTS = ("state", "profiles", "faults", "reset")


def answer(
    app: TargetApp, method: str, name: str, query: dict[str, str], request: Request
) -> Reply:
    """The answer to ``method /_emulator/{name}``."""
    if name == "state" and method == "GET":
        return json_answer(200, app.state(request.base_url))
    if name == "profiles" and method == "GET":
        id_type = query.get("type", "thirdPartyId")
        if id_type not in ID_TYPES:
            return json_answer(400, {"error": f"type must be one of {', '.join(ID_TYPES)}"})
        return json_answer(200, {"type": id_type, "profiles": app.profiles(id_type, None)})
    if name == "faults" and method in ("GET", "POST"):
        if method == "POST":
            try:
                changes = json.loads(request.body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object")
                with app.lock:
                    app.faults.update(changes)
            except ValueError as error:  # JSONDecodeError is a ValueError too
                return json_answer(400, {"error": str(error)}, str(error))
        with app.lock:
            return json_answer(200, app.faults.to_json())
    if name == "reset" and method == "POST":
        app.reset()
        return json_answer(200, {"reset": True})
    if name in _ENDPOINTS:
        return json_answer(405, {"error": f"method {method} not allowed"})
    return json_answer(404, {"error": f"no emulator endpoint {name!r}"})
