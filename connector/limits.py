"""Target's documented limits on bulk profile updates (shared/target-api.md, "Limits").

The config checks its settings against them, the staging SQL rejects the rows that break
them, and the batches are cut to stay under them: one place, so they cannot drift apart.
"""

from __future__ import annotations

# Per upload: at most 500,000 rows, and under 50 MB (taken as 50,000,000 bytes).
MAX_ROWS_PER_BATCH = 500_000
MAX_BYTES_PER_BATCH = 50_000_000
# A thirdPartyId (mbox3rdPartyId) holds at most 256 characters.
MAX_ID_CHARS = 256
# Attribute names and values: 128 and 256 characters (documented for in-mbox profile
# parameters; bulk updates keep the same limits).
MAX_ATTRIBUTE_NAME_CHARS = 128
MAX_VALUE_CHARS = 256
# A profile's names and values together stay under 64 KB of UTF-8.
MAX_PROFILE_BYTES = 65_536
# The bulk profile API's rate limit, shared with Target's Admin and Reporting APIs.
TARGET_CALLS_PER_MINUTE = 50
