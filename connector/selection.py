"""Choosing syncs with dbt's selection syntax: ``--select tag:daily --exclude name:test_*``.

A selector is one of:

- ``tag:daily`` — syncs whose top-level ``tags`` hold ``daily`` (a glob: ``tag:crm_*``);
- ``name:vip_*`` — syncs whose ``name`` matches the glob; a bare word (``vip_customers``,
  ``vip_*``) means the same;
- ``path:configs/daily`` — config files under that folder, or matching that glob
  (``path:configs/*_hourly.yaml``); a bare word holding ``/`` or ending in ``.yaml``/``.yml``
  means the same. Relative paths are taken from the working directory.

As in dbt, selectors separated by spaces (or given as several ``--select``) are a union,
selectors joined by commas an intersection (``tag:daily,tag:crm``), and ``--exclude`` (the same
syntax) removes what it matches. With no ``--select`` everything is selected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .errors import ConfigError

METHODS = ("tag", "name", "path")


@dataclass(frozen=True)
class Candidate:
    """What selection looks at: the config file and, when it loaded, its name and tags."""

    path: Path
    name: str | None = None
    tags: tuple[str, ...] = ()


def parse(expressions: Iterable[str], option: str) -> list[list[tuple[str, str]]]:
    """``["tag:a,tag:b name:c"]`` → ``[[("tag","a"),("tag","b")], [("name","c")]]``."""
    groups: list[list[tuple[str, str]]] = []
    for expression in expressions:
        for word in expression.split():
            group = []
            for part in word.split(","):
                if not part:
                    raise ConfigError(f"{option} '{expression}': empty selector around ','")
                group.append(_selector(part, option))
            groups.append(group)
    return groups


def _selector(text: str, option: str) -> tuple[str, str]:
    method, colon, value = text.partition(":")
    if colon and method in METHODS:
        if not value:
            raise ConfigError(f"{option} '{text}': nothing after '{method}:'")
        return method, value
    if colon:
        raise ConfigError(
            f"{option} '{text}': unknown selector method '{method}' (use "
            f"{', '.join(m + ':' for m in METHODS)} or a bare name or path)"
        )
    if "/" in text or text.endswith((".yaml", ".yml")):
        return "path", text
    return "name", text


def _matches(candidate: Candidate, method: str, value: str) -> bool | None:
    """Whether the candidate matches; None when it cannot be told (a config that failed)."""
    if method == "path":
        file = candidate.path.resolve()
        target = Path.cwd().resolve() / Path(value).expanduser()  # an absolute value wins
        where = target.resolve()
        return file == where or where in file.parents or fnmatchcase(str(file), str(target))
    if candidate.name is None:
        return None
    if method == "tag":
        return any(fnmatchcase(tag, value) for tag in candidate.tags)
    return fnmatchcase(candidate.name, value)


def _group_matches(candidate: Candidate, group: Sequence[tuple[str, str]]) -> bool | None:
    results = [_matches(candidate, method, value) for method, value in group]
    if False in results:
        return False
    return None if None in results else True


def select(
    candidates: Sequence[Candidate],
    selects: Sequence[str] = (),
    excludes: Sequence[str] = (),
) -> list[Candidate]:
    """The candidates that ``--select`` picks and ``--exclude`` leaves, in their order.

    A config that failed to load has no name or tags: it stays selected unless a path
    selector decides it, so its error is reported rather than silently skipped.
    """
    chosen = parse(selects, "--select")
    dropped = parse(excludes, "--exclude")
    picked = []
    for candidate in candidates:
        selected = (
            True if not chosen else _any(_group_matches(candidate, group) for group in chosen)
        )
        excluded = _any(_group_matches(candidate, group) for group in dropped)
        if selected is not False and excluded is not True:
            picked.append(candidate)
    if not picked and candidates:
        tags = sorted({t for c in candidates for t in c.tags})
        known = f" (tags in these configs: {', '.join(tags)})" if tags else " (none has tags)"
        wanted = " ".join(f"--select {s}" for s in selects) + "".join(
            f" --exclude {e}" for e in excludes
        )
        raise ConfigError(f"no config matches {wanted.strip()}{known}; nothing was run")
    return picked


def _any(results: Iterable[bool | None]) -> bool | None:
    """True if any is True; else None if any is unknown; else False."""
    seen_unknown = False
    for result in results:
        if result is True:
            return True
        seen_unknown = seen_unknown or result is None
    return None if seen_unknown else False
