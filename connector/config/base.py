"""What every config model shares: frozen and strict, paths relative to the config file,
and errors that point at the key they are about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo
from pydantic_core import PydanticCustomError


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute() or str(value) == ":memory:":
        return value
    return (Path(base) / value).resolve()


RelPath = Annotated[Path, AfterValidator(_resolve_path)]


class Frozen(BaseModel):
    """A config section: immutable, and any key it does not declare is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# Errors of these two types carry the key they are about; the loader's messages put them at
# that key's line (connector/config/load.py, _describe).
def key_error(key: str, message: str) -> PydanticCustomError:
    """An error about one key of a section, located at that key."""
    return PydanticCustomError("key", "{message}", {"key": key, "message": message})


def attribute_error(name: str, message: str) -> PydanticCustomError:
    """An error about one attribute, located at its own key."""
    return PydanticCustomError(
        "attribute", "{message}", {"attribute": str(name), "message": f"'{name}' {message}"}
    )
