"""Stable shard numbers for the sparse indexes, so no single index partition is hot."""
from __future__ import annotations

import zlib


def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % shards
