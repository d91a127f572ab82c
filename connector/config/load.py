"""Reading a sync config: YAML in, a validated :class:`~.models.SyncConfig` out.

``load_config(path)`` reads one YAML file, substitutes ``${VAR}`` (and ``${VAR:-default}``)
from the environment, resolves paths relative to the file, and validates it. Every problem is
a :class:`~connector.errors.ConfigError` naming the file, the line, the key path and what is
expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from .models import SyncConfig
from .sources import DbtSource

# libyaml's loader when PyYAML has it (ten times faster), else the pure-Python one; both safe.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> SyncConfig:
    """Read and validate one sync config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config ({exc.strerror or exc})") from None
    return parse_config(text, file, os.environ if environ is None else environ)


def parse_config(text: str, file: Path, environ: Mapping[str, str]) -> SyncConfig:
    """Validate config text that came from ``file`` (used for messages and relative paths)."""
    try:
        root = yaml.compose(text, Loader=_LOADER)
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(invalid_yaml(exc, file)) from None
    if root is not None:
        _check_duplicate_keys(root, (), file)
    lines = _key_lines(root) if root is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of keys (name, source, ...) at the top")
    raw = _substitute(raw, (), environ, file, lines)
    try:
        config = SyncConfig.model_validate(raw, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, lines)) from None
    config = config.model_copy(update={"config_path": file.resolve(), "key_lines": lines})
    if not isinstance(config.source, DbtSource):
        try:
            config.source.query_text()
        except ConfigError as exc:
            raise ConfigError(f"{_where(file, lines, ('source', 'query_file'))}: {exc}") from None
    return config


def invalid_yaml(exc: yaml.YAMLError, file: Path) -> str:
    """``FILE:LINE: invalid YAML (what is wrong)``, for a YAML file that does not parse."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{file}:{mark.line + 1}" if mark else str(file)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: invalid YAML ({problem})"


def _check_duplicate_keys(node: yaml.Node, path: tuple[str, ...], file: Path) -> None:
    """Fail on a key written twice in one mapping: PyYAML silently keeps the last one."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen and name != "<<":
                where = ".".join((*path, name))
                raise ConfigError(
                    f"{file}:{line}: {where}: duplicate key (first on line {seen[name]}); "
                    "YAML would silently keep only the last one, so remove or rename one"
                )
            seen[name] = line
            _check_duplicate_keys(value, (*path, name), file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, (*path, str(index)), file)


def _key_lines(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path to the 1-based line it is written on."""
    lines: dict[tuple[str, ...], int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            lines.update({k: v for k, v in _key_lines(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, (*path, str(index))))
    return lines


def _substitute(
    value: Any,
    path: tuple[str, ...],
    environ: Mapping[str, str],
    file: Path,
    lines: dict[tuple[str, ...], int],
) -> Any:
    if isinstance(value, dict):
        # YAML reads a bare `null:` key as None; in attributes it is our `null` rule.
        return {
            ("null" if k is None else k): _substitute(
                v, (*path, "null" if k is None else str(k)), environ, file, lines
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, (*path, str(i)), environ, file, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{_where(file, lines, path)}: {'.'.join(path)}: environment variable "
            f"{name} is not set (set it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(replace, value)


def _where(file: Path, lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> str:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return f"{file}:{lines[path[:end]]}"
    return str(file)


_SOURCE_TAGS = {"duckdb", "snowflake", "sqlalchemy", "dbt"}
_STATE_TAGS = {"duckdb", "warehouse"}


def _describe(exc: ValidationError, file: Path, lines: dict[tuple[str, ...], int]) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if len(loc) > 1 and loc[0] == "source" and loc[1] in _SOURCE_TAGS:
            del loc[1]
        if len(loc) > 1 and loc[0] == "on_removed" and loc[1] in ("ignore", "set"):
            del loc[1]
        if len(loc) > 1 and loc[0] == "state" and loc[1] in _STATE_TAGS:
            del loc[1]
        if loc and loc[-1] in ("str", "[key]"):
            loc.pop()
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "attribute":
            loc.append(str(error["ctx"]["attribute"]))
            message = str(error["ctx"]["message"])
        elif error["type"] == "key":
            loc.append(str(error["ctx"]["key"]))
            message = str(error["ctx"]["message"])
        elif error["type"] == "literal_error" and loc == ["on_removed"]:
            message = "expected 'ignore' or {set: {attribute: value, ...}}"
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README for the keys)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "state_type":
            loc.append("type")
            key = ".".join(loc)
        elif error["type"] == "union_tag_invalid":
            message = "unknown source type; expected one of duckdb, snowflake, sqlalchemy, dbt"
        problems.append(f"{_where(file, lines, tuple(loc))}: {key}: {message}")
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more
