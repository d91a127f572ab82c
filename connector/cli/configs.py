"""The configs a command runs: files or folders of them, loaded with their secrets masked,
chosen by --select / --exclude, and checked for two that would share one snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import SyncConfig


def config_files(paths: tuple[str, ...]) -> Iterator[Path]:
    """The config files named, a folder standing for its *.yaml and *.yml files."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ConfigError(f"{path}: no *.yaml or *.yml config files in this folder")
            yield from found
        else:
            yield path


def load_and_mask(file: str | Path) -> SyncConfig:
    """Load a config and mask its secrets in every log line from now on."""
    from ..config import load_config
    from ..config.secrets import add_secrets, secret_values

    config = load_config(file)
    add_secrets(secret_values(config))
    return config


def name_clashes(configs: list[SyncConfig]) -> str | None:
    """Two configs of one run that would share a snapshot: same name, same state store."""
    from ..state import location_of

    seen: dict[tuple[str, tuple[str, ...]], SyncConfig] = {}
    for config in configs:
        where = location_of(config)
        first = seen.setdefault((config.name, where.place), config)
        if first is not config and first.config_path != config.config_path:
            return (
                f"{first.config_path} and {config.config_path} are both sync '{config.name}' "
                f"with the {where}: they would share one snapshot and undo each other's work; "
                f"give one of them another name (or another {where.key}). Nothing was run"
            )
    return None


def selected(
    loaded: list[tuple[Path, SyncConfig | ConfigError]],
    select: tuple[str, ...],
    exclude: tuple[str, ...],
) -> list[tuple[Path, SyncConfig | ConfigError]]:
    """The loaded configs that --select picks and --exclude leaves (connector/selection.py)."""
    from ..selection import Candidate
    from ..selection import select as pick

    candidates = [
        Candidate(file)
        if isinstance(config, ConfigError)
        else Candidate(file, config.name, config.tags)
        for file, config in loaded
    ]
    kept = {id(candidate) for candidate in pick(candidates, select, exclude)}
    return [item for item, c in zip(loaded, candidates, strict=True) if id(c) in kept]
