"""Which dbt project, profile and target a dbt source uses, found exactly as dbt finds them.

dbt-core (``dbt/cli/params.py``, ``dbt/cli/resolvers.py``, ``dbt/config/profile.py``) takes
each setting from its command-line flag, else its environment variable, else a default. The
flags of a sync are the keys of its ``source:``; the rest is dbt's own order:

============  ====================  =================  =======================================
setting       source key (flag)     environment        default
============  ====================  =================  =======================================
project dir   ``project_dir``       ``DBT_PROJECT_DIR`` the working directory or its nearest
                                                       parent holding ``dbt_project.yml``
profiles dir  ``profiles_dir``      ``DBT_PROFILES_DIR`` the working directory if it holds
                                                       ``profiles.yml``, else ``~/.dbt``
profile       ``profile``           ``DBT_PROFILE``    ``profile:`` of ``dbt_project.yml``
target        ``target``            ``DBT_TARGET``     the profile's ``target:``, else
                                                       ``default``
============  ====================  =================  =======================================

An empty environment variable counts as unset, as in dbt (click ignores empty values). Values
in dbt's files may use ``{{ env_var('NAME') }}`` and ``{{ env_var('NAME', 'default') }}``,
optionally piped through ``int``, ``as_number``, ``as_bool``, ``as_native`` or ``as_text``;
any other Jinja is refused with a message rather than passed on as text. dbt itself is never
imported: these files are read as plain YAML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import DbtSource
from ..config.load import invalid_yaml
from ..errors import ConfigError
from ..text import one_line

_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%|\{#", re.S)
_ENV_VAR = re.compile(
    r"""^\s*env_var\(\s*(['"])(?P<name>[^'"]+)\1\s*"""
    r"""(?:,\s*(?:(['"])(?P<default>.*?)\3|(?P<number>-?[\d.]+))\s*)?\)"""
    r"""\s*(?:\|\s*(?P<filter>\w+)\s*)?$""",
    re.S,
)


@dataclass(frozen=True)
class DbtSetup:
    """Where a dbt source's project and connection come from, and why."""

    project_dir: Path
    project: dict[str, Any]  # dbt_project.yml
    profiles_yml: Path
    profile: str
    profile_from: str  # "source.profile", "DBT_PROFILE" or "dbt_project.yml"
    target: str
    target_from: str  # "source.target", "DBT_TARGET", "profiles.yml" or "dbt's default"
    output: dict[str, Any]  # the target's settings, rendered (only the keys asked for)
    # What dbt picks with no flag or variable: to tell which target its artifacts were for.
    default_profile: str | None
    default_target: str

    def describe(self) -> str:
        """``profile 'shop' (dbt_project.yml), target 'prod' (DBT_TARGET) in /path``."""
        return (
            f"dbt profile '{self.profile}' ({self.profile_from}), target '{self.target}' "
            f"({self.target_from}) in {self.profiles_yml}"
        )


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    """A dbt environment variable; empty counts as unset, as click reads it for dbt."""
    return environ.get(name) or None


def project_dir(source: DbtSource, label: str, environ: Mapping[str, str], cwd: Path) -> Path:
    """The project folder: ``source.project_dir``, ``$DBT_PROJECT_DIR``, or dbt's default."""
    if source.project_dir is not None:
        folder, origin = source.project_dir, "source.project_dir"
    elif _env("DBT_PROJECT_DIR", environ):
        folder, origin = (cwd / Path(environ["DBT_PROJECT_DIR"]).expanduser()), "DBT_PROJECT_DIR"
    else:
        # dbt: the working directory or its nearest parent that holds dbt_project.yml.
        found = next((d for d in (cwd, *cwd.parents) if (d / "dbt_project.yml").is_file()), None)
        if found is None:
            raise ConfigError(
                f"{label}: no dbt project: source.project_dir and DBT_PROJECT_DIR are not set "
                f"and neither {cwd} nor a parent holds dbt_project.yml; set source.project_dir"
            )
        return found
    if not (folder / "dbt_project.yml").is_file():
        raise ConfigError(
            f"{label}: {folder} (from {origin}) holds no dbt_project.yml; point {origin} at the "
            "dbt project folder"
        )
    return folder.resolve()


def load_yaml(path: Path, label: str, what: str) -> Any:
    """A YAML file of dbt's, or a one-line ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: {what} {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read {what} {path} ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: {invalid_yaml(exc, path)}") from None


def load_project(folder: Path, label: str) -> dict[str, Any]:
    """``dbt_project.yml`` of ``folder``, as a mapping."""
    project = load_yaml(folder / "dbt_project.yml", label, "the dbt project file")
    if not isinstance(project, dict):
        raise ConfigError(f"{label}: {folder / 'dbt_project.yml'} is not a dbt project file")
    return project


def profiles_yml(
    source: DbtSource, folder: Path, label: str, environ: Mapping[str, str], cwd: Path
) -> Path:
    """``profiles.yml`` from ``source.profiles_dir``, ``$DBT_PROFILES_DIR`` or dbt's default."""
    if source.profiles_dir is not None:
        directory, origin = source.profiles_dir, "source.profiles_dir"
    elif _env("DBT_PROFILES_DIR", environ):
        directory = cwd / Path(environ["DBT_PROFILES_DIR"]).expanduser()
        origin = "DBT_PROFILES_DIR"
    else:
        # dbt's default: the working directory if it has profiles.yml, else ~/.dbt. It does
        # not look in the project folder (unless that is the working directory).
        here = cwd / "profiles.yml"
        if here.is_file():
            return here
        directory, origin = Path(environ.get("HOME") or Path.home()) / ".dbt", "dbt's default"
        path = directory / "profiles.yml"
        if not path.is_file():
            hint = (
                f"; {folder / 'profiles.yml'} exists, but dbt does not look in the project "
                "folder: set source.profiles_dir or DBT_PROFILES_DIR to it"
                if (folder / "profiles.yml").is_file()
                else "; set source.profiles_dir or DBT_PROFILES_DIR"
            )
            raise ConfigError(
                f"{label}: no dbt profiles.yml: looked where dbt looks ({here}, then {path})" + hint
            )
        return path
    path = directory / "profiles.yml"
    if not path.is_file():
        raise ConfigError(f"{label}: {path} (from {origin}) does not exist")
    return path


def setup(
    source: DbtSource,
    label: str,
    used_keys: set[str],
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> DbtSetup:
    """Find the project, profiles.yml, profile and target as dbt does, and render the
    target's ``used_keys``."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    folder = project_dir(source, label, environ, cwd)
    project = load_project(folder, label)
    path = profiles_yml(source, folder, label, environ, cwd)

    project_profile = render(project.get("profile"), label, "dbt_project.yml", environ)
    default_profile = str(project_profile) if project_profile else None
    if source.profile:
        profile_name, profile_from = source.profile, "source.profile"
    elif _env("DBT_PROFILE", environ):
        profile_name, profile_from = environ["DBT_PROFILE"], "DBT_PROFILE"
    elif default_profile is not None:
        profile_name, profile_from = default_profile, "dbt_project.yml"
    else:
        raise ConfigError(
            f"{label}: {folder / 'dbt_project.yml'} names no profile; set source.profile "
            "or DBT_PROFILE"
        )

    profiles = load_yaml(path, label, "the dbt profiles file") or {}
    profile = profiles.get(profile_name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        known = ", ".join(sorted(str(k) for k in profiles if k != "config")) or "none"
        raise ConfigError(
            f"{label}: {path} has no profile '{profile_name}' (from {profile_from}; profiles "
            f"there: {known})"
        )

    if "target" in profile:
        default_target = str(render(profile["target"], label, str(path), environ))
        default_from = "profiles.yml"
    else:
        default_target, default_from = "default", "dbt's default"
    if source.target:
        target, target_from = source.target, "source.target"
    elif _env("DBT_TARGET", environ):
        target, target_from = environ["DBT_TARGET"], "DBT_TARGET"
    else:
        target, target_from = default_target, default_from
    outputs = profile.get("outputs") or {}
    if target not in outputs:
        known = ", ".join(sorted(str(k) for k in outputs)) or "none"
        raise ConfigError(
            f"{label}: dbt profile '{profile_name}' in {path} has no target '{target}' (from "
            f"{target_from}; targets: {known}); set source.target or DBT_TARGET"
        )
    raw = outputs[target]
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: {path}: target '{target}' is not a mapping")
    # Only the keys we use are rendered: Jinja elsewhere (other targets, hooks) is dbt's.
    output = {k: render(v, label, str(path), environ) for k, v in raw.items() if k in used_keys}
    return DbtSetup(
        project_dir=folder,
        project=project,
        profiles_yml=path,
        profile=profile_name,
        profile_from=profile_from,
        target=target,
        target_from=target_from,
        output=output,
        default_profile=default_profile,
        default_target=default_target,
    )


def render(value: Any, label: str, where: str, environ: Mapping[str, str]) -> Any:
    """dbt's ``{{ env_var(...) }}`` rendering of every string in ``value``."""
    if isinstance(value, dict):
        return {k: render(v, label, where, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, label, where, environ) for v in value]
    if not isinstance(value, str) or not _JINJA.search(value):
        return value
    whole = re.fullmatch(r"\s*\{\{(.*?)\}\}\s*", value, re.S)
    if whole and "{{" not in whole.group(1):
        # A value that is one expression may become a number or a boolean through a filter.
        return _env_var(whole.group(1), label, where, environ, typed=True)

    def text(match: re.Match[str]) -> str:
        if match.group(1) is None:
            raise ConfigError(_unsupported(value, label, where))
        return str(_env_var(match.group(1), label, where, environ, typed=False))

    return _JINJA.sub(text, value)


def _env_var(
    expression: str, label: str, where: str, environ: Mapping[str, str], typed: bool
) -> Any:
    match = _ENV_VAR.match(expression)
    if match is None:
        raise ConfigError(_unsupported("{{" + expression + "}}", label, where))
    name = match.group("name")
    if name in environ:
        value = environ[name]
    elif match.group("default") is not None:
        value = match.group("default")
    elif match.group("number") is not None:
        value = match.group("number")
    else:
        raise ConfigError(
            f"{label}: {where} reads environment variable {name}, which is not set "
            "(set it, or give env_var a default)"
        )
    kind = match.group("filter")
    if kind in (None, "as_text", "string"):
        return value
    if not typed:
        # Inside a longer string a filtered value is rendered as text, as Jinja does.
        return str(_env_var(expression, label, where, environ, typed=True))
    try:
        if kind == "int":
            return int(value)
        if kind == "as_number":
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        if kind == "as_bool":
            return {"true": True, "false": False}[value.strip().lower()]
        if kind == "as_native":
            return yaml.safe_load(value)
    except (ValueError, KeyError, yaml.YAMLError):
        raise ConfigError(
            f"{label}: {where}: environment variable {name} does not read as {kind}"
        ) from None
    raise ConfigError(_unsupported("{{" + expression + "}}", label, where))


def _unsupported(text: str, label: str, where: str) -> str:
    shown = one_line(text, 80)
    return (
        f"{label}: {where} uses Jinja this reader does not support ({shown}); only "
        "{{ env_var('NAME') }} and {{ env_var('NAME', 'default') }} are rendered: set the "
        "value directly, or give the sync a source of type duckdb/snowflake/sqlalchemy"
    )
