"""Canonical texts of numbers as DuckDB SQL: shortest round-trip floats, exact decimals, and
the printf patterns a ``format:`` may give."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

from ..sqltext import sql_literal
from .ingest import MAX_DECIMAL128, ingest_type


def _float_text(c: str) -> str:
    """SQL rewriting Arrow's shortest text of a float (see :func:`ingest_type`) as Python's
    ``repr`` writes it: positional for exponents -4 to 15 with at least one decimal, else
    ``d.ddde±XX`` with at least two exponent digits; ``NaN``, ``Infinity``, ``0.0``.

    Arrow writes the same shortest digits, positional for exponents -6 to 9 only, with no
    ``.0`` and a one-digit exponent; the common case is one ``contains`` away.
    """
    sign = f"CASE WHEN starts_with({c}, '-') THEN '-' ELSE '' END"
    absolute = f"ltrim({c}, '-')"
    exponent = f"CAST(split_part({c}, 'e', 2) AS INTEGER)"
    digits = f"replace(ltrim(split_part({c}, 'e', 1), '-'), '.', '')"
    positional = (
        f"CASE WHEN length({digits}) <= {exponent} + 1 "
        f"THEN rpad({digits}, {exponent} + 1, '0') || '.0' "
        f"ELSE left({digits}, {exponent} + 1) || '.' || substr({digits}, {exponent} + 2) END"
    )
    scientific = (
        f"split_part({c}, 'e', 1) || 'e' || CASE WHEN {exponent} < 0 THEN '-' ELSE '+' END "
        f"|| printf('%02d', abs({exponent}))"
    )
    # 0.0000ddd (exponent -5 or -6) is scientific in repr.
    fraction = f"substr({absolute}, 3)"
    small_digits = f"ltrim({fraction}, '0')"
    small = (
        f"{sign} || left({small_digits}, 1) || CASE WHEN length({small_digits}) > 1 "
        f"THEN '.' || substr({small_digits}, 2) ELSE '' END || 'e-' || "
        f"printf('%02d', length({fraction}) - length({small_digits}) + 1)"
    )
    # Most floats are already written as repr writes them; those go first (this test
    # implies every condition under which the rules below keep the text as it is).
    return (
        f"CASE WHEN contains({c}, '.') AND NOT contains({c}, 'e') "
        f"AND NOT contains({c}, '0.0000') THEN {c} "
        f"WHEN {c} = 'nan' THEN 'NaN' WHEN {c} = 'inf' THEN 'Infinity' "
        f"WHEN {c} = '-inf' THEN '-Infinity' WHEN {c} IN ('0', '-0') THEN '0.0' "
        f"WHEN contains({c}, 'e') THEN CASE WHEN {exponent} BETWEEN 0 AND 15 "
        f"THEN {sign} || {positional} ELSE {scientific} END "
        f"WHEN starts_with({absolute}, '0.0000') THEN {small} "
        f"WHEN contains({c}, '.') THEN {c} ELSE {c} || '.0' END"
    )


_PRINTF_SPEC = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\d*)(?:\.(?P<precision>\d+))?(?P<conv>.)")


_FLOAT_CONVERSIONS = set("fFeEgG")


_INTEGER_CONVERSIONS = set("dixXo")


def _printf_spec(fmt: str, where: str) -> re.Match[str]:
    specs = [m for m in _PRINTF_SPEC.finditer(fmt) if m.group(0) != "%%"]
    if len(specs) != 1:
        raise ConfigError(
            f"{where}: format '{fmt}' must hold exactly one printf conversion such as %.2f "
            f"or %05d (write %% for a literal percent sign)"
        )
    return specs[0]


def _exact_fixed(c: str, t: pa.DataType, places: int) -> str:
    """SQL writing an integer or decimal with exactly ``places`` decimals, exactly."""
    import pyarrow as pa

    scale = t.scale if pa.types.is_decimal(t) else 0
    if places < scale:
        return f"CAST(round({c}, {places}) AS VARCHAR)"
    pad = ("." if scale == 0 else "") + "0" * (places - scale) if places else ""
    return f"(CAST({c} AS VARCHAR) || {sql_literal(pad)})" if pad else f"CAST({c} AS VARCHAR)"


def printf_sql(c: str, t: pa.DataType, fmt: str, where: str) -> str:
    """SQL for a printf ``format:`` on a number column of (source) type ``t``."""
    import pyarrow as pa

    spec = _printf_spec(fmt, where)
    conv = spec.group("conv")
    is_float = pa.types.is_floating(t)
    if conv in _INTEGER_CONVERSIONS:
        if not pa.types.is_integer(t):
            raise ConfigError(
                f"{where}: format '{fmt}' writes an integer, but the column holds {t} "
                f"values; use a pattern such as %.0f or %.2f"
            )
        return f"printf({sql_literal(fmt)}, {c})"
    if conv not in _FLOAT_CONVERSIONS:
        raise ConfigError(
            f"{where}: format '{fmt}': %{conv} is not a number conversion; use one of "
            f"%d %i %x %X %o (integers) or %f %e %g (any number)"
        )
    exact = (
        conv == "f"
        and not spec.group("flags")
        and not spec.group("width")
        and not is_float
        and (pa.types.is_integer(t) or t.precision <= MAX_DECIMAL128)
    )
    if exact:
        places = int(spec.group("precision") or 6)
        before = fmt[: spec.start()].replace("%%", "%")
        after = fmt[spec.end() :].replace("%%", "%")
        text = _exact_fixed(c, ingest_type(t), places)
        if before:
            text = f"{sql_literal(before)} || {text}"
        if after:
            text = f"{text} || {sql_literal(after)}"
        return f"({text})"
    # Floats arrive as their shortest text, which reads back to the very same value.
    number = f"CAST({c} AS {'DOUBLE' if pa.types.is_float64(t) or not is_float else 'FLOAT'})"
    # A value that formats like zero once its sign is dropped is written as zero: no "-0.00".
    signless = (
        f"CASE WHEN {number} <= 0 AND printf({sql_literal(fmt)}, -{number}) = "
        f"printf({sql_literal(fmt)}, CAST(0 AS DOUBLE)) THEN CAST(0 AS DOUBLE) ELSE {number} END"
    )
    # DuckDB's printf writes wrong digits for %f of 2^63 and more (6.3e20 comes out with a
    # fraction); such values keep their default text instead.
    huge = (
        f"WHEN abs({number}) >= 9223372036854775808.0 THEN {number_text(c, t)} "
        if conv in "fF"
        else ""
    )
    return (
        f"CASE WHEN isnan({number}) THEN 'NaN' "
        f"WHEN {number} = 'infinity' THEN 'Infinity' "
        f"WHEN {number} = '-infinity' THEN '-Infinity' {huge}"
        f"ELSE printf({sql_literal(fmt)}, {signless}) END"
    )


def number_text(c: str, t: pa.DataType) -> str:
    """SQL for the default text of a number column (as ingested)."""
    import pyarrow as pa

    if pa.types.is_floating(t):
        return _float_text(c)
    if pa.types.is_decimal(t) and t.scale > 0:
        # rtrim is slow: only a text ending in 0 needs it (3x faster at 10M values).
        text = f"CAST({c} AS VARCHAR)"
        trimmed = (
            f"CASE WHEN ends_with({text}, '0') THEN rtrim(rtrim({text}, '0'), '.') ELSE {text} END"
        )
        if ingest_type(t) != pa.string():
            return trimmed
        # Arrow writes decimals under 1e-6 as 1.2E-7 (and zero as 0E-8): write them out.
        exponent = f"CAST(split_part({c}, 'E', 2) AS INTEGER)"
        digits = f"rtrim(replace(ltrim(split_part({c}, 'E', 1), '-'), '.', ''), '0')"
        sign = f"CASE WHEN starts_with({c}, '-') THEN '-' ELSE '' END"
        return (
            f"CASE WHEN NOT contains({c}, 'E') THEN {trimmed} WHEN {digits} = '' THEN '0' "
            f"ELSE {sign} || '0.' || repeat('0', -{exponent} - 1) || {digits} END"
        )
    return f"CAST({c} AS VARCHAR)"
