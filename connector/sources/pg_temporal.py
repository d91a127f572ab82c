"""PostgreSQL dates and timestamps that Python's ``datetime`` cannot hold.

psycopg turns ``date``, ``timestamp`` and ``timestamptz`` values into ``datetime`` objects,
which stop at years 1 to 9999: ``infinity``, ``-infinity``, years BC and years after 9999
(PostgreSQL has them all) raise ``DataError``, and that failed the whole run. The loaders
registered here let psycopg's own (fast) loader handle every value it can, and turn the
others into the integers Arrow holds for them (days, or microseconds, since 1970-01-01):
exactly where DuckDB has them, and DuckDB's own infinities (the largest integer, and its
negation) for ``infinity`` and ``-infinity``. The staging SQL then rejects the infinities and
whatever lies outside DuckDB's range as ``value_out_of_range`` (see connector/serialize.py);
the rest is written by the same rules as any other date.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg.adapt import AdaptersMap

# DuckDB's infinities and the first value below its range, as Arrow integers.
DATE_INFINITY = 2**31 - 1
DATE_BELOW_RANGE = -(2**31)
TIMESTAMP_INFINITY = 2**63 - 1
TIMESTAMP_BELOW_RANGE = -(2**63)

_DATE = re.compile(r"(\d+)-(\d\d)-(\d\d)( BC)?")
_TIMESTAMP = re.compile(
    r"(\d+)-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
    r"(?:([+-])(\d\d)(?::(\d\d))?(?::(\d\d))?)?( BC)?"
)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date; astronomical years (0 = 1 BC).
    Howard Hinnant's algorithm."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def date_days(text: str) -> int:
    """The days since 1970 of PostgreSQL's ISO text of a date Python cannot hold."""
    if text == "infinity":
        return DATE_INFINITY
    if text == "-infinity":
        return -DATE_INFINITY
    match = _DATE.fullmatch(text)
    if match is None:  # a DateStyle other than ISO: no exact value, so rejected downstream
        return DATE_BELOW_RANGE
    year, month, day, bc = match.groups()
    return days_from_civil(1 - int(year) if bc else int(year), int(month), int(day))


def timestamp_micros(text: str) -> int:
    """The microseconds since 1970 (UTC, when the text has an offset) of PostgreSQL's ISO
    text of a timestamp Python cannot hold."""
    if text == "infinity":
        return TIMESTAMP_INFINITY
    if text == "-infinity":
        return -TIMESTAMP_INFINITY
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return TIMESTAMP_BELOW_RANGE
    year, month, day, hour, minute, second, fraction, sign, oh, om, os_, bc = match.groups()
    days = days_from_civil(1 - int(year) if bc else int(year), int(month), int(day))
    seconds = days * 86_400 + int(hour) * 3_600 + int(minute) * 60 + int(second)
    if sign:
        offset = int(oh) * 3_600 + int(om or 0) * 60 + int(os_ or 0)
        seconds -= offset if sign == "+" else -offset
    micros = seconds * 1_000_000 + int((fraction or "0").ljust(6, "0"))
    # Within DuckDB's timestamps only: PostgreSQL's reach a little further (294276 AD).
    return micros if abs(micros) < TIMESTAMP_INFINITY else TIMESTAMP_BELOW_RANGE


def register(adapters: AdaptersMap) -> None:
    """Have ``adapters`` load every date and timestamp, even those Python cannot hold."""
    from psycopg import DataError
    from psycopg.abc import Loader as LoaderProtocol
    from psycopg.adapt import Loader
    from psycopg.pq import Format

    for name, fallback in (
        ("date", date_days),
        ("timestamp", timestamp_micros),
        ("timestamptz", timestamp_micros),
    ):
        info = adapters.types.get(name)
        if info is None:
            continue
        default = adapters.get_loader(info.oid, Format.TEXT)
        if default is None:
            continue
        fast: type[LoaderProtocol] = default

        class Fallback(Loader):
            # Bound per type: the loader psycopg had, and the conversion for the rest.
            _fast_loader = fast
            _fallback = staticmethod(fallback)

            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                # The bound method, looked up once: this runs for every value.
                self._load = self._fast_loader(oid, context).load

            def load(self, data: Any) -> Any:
                try:
                    return self._load(data)
                except DataError:
                    return self._fallback(bytes(data).decode("ascii", "replace"))

        adapters.register_loader(info.oid, Fallback)
