"""The sync config: YAML in, frozen pydantic models out.

``load_config(path)`` reads one YAML file (:mod:`.load`) into a :class:`SyncConfig`
(:mod:`.models`, with its ``source`` kinds in :mod:`.sources` and its ``target`` and
``notify`` sections in :mod:`.target`). :mod:`.secrets` masks a config's secret values in
anything shown; :mod:`.reference` writes the README's table of every key
(``python -m connector.config.reference README.md``).
"""

from ..limits import (
    MAX_ATTRIBUTE_NAME_CHARS,
    MAX_BYTES_PER_BATCH,
    MAX_ROWS_PER_BATCH,
    MAX_VALUE_CHARS,
    TARGET_CALLS_PER_MINUTE,
)
from .base import RelPath
from .load import load_config, parse_config
from .models import (
    DEFAULT_MAX_REMOVED_FRACTION,
    DEFAULT_STATE_PATH,
    Attribute,
    AttributeName,
    DuckDBState,
    Identity,
    OnRemoved,
    RemovedSet,
    SentText,
    StateConfig,
    SyncConfig,
    SyncTag,
)
from .sources import (
    DbtExposure,
    DbtSource,
    DuckDBSource,
    Duration,
    ExposureOwner,
    MetaValue,
    SnowflakeSource,
    Source,
    SqlAlchemySource,
)
from .target import NotifyConfig, NotifyWhen, TargetConfig

__all__ = [
    "DEFAULT_MAX_REMOVED_FRACTION",
    "DEFAULT_STATE_PATH",
    "MAX_ATTRIBUTE_NAME_CHARS",
    "MAX_BYTES_PER_BATCH",
    "MAX_ROWS_PER_BATCH",
    "MAX_VALUE_CHARS",
    "TARGET_CALLS_PER_MINUTE",
    "Attribute",
    "AttributeName",
    "DbtExposure",
    "DbtSource",
    "DuckDBSource",
    "DuckDBState",
    "Duration",
    "ExposureOwner",
    "Identity",
    "MetaValue",
    "NotifyConfig",
    "NotifyWhen",
    "OnRemoved",
    "RelPath",
    "RemovedSet",
    "SentText",
    "SnowflakeSource",
    "Source",
    "SqlAlchemySource",
    "StateConfig",
    "SyncConfig",
    "SyncTag",
    "TargetConfig",
    "load_config",
    "parse_config",
]
