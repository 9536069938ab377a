"""Stable shard numbers for the sparse indexes, so no single index partition is hot: which shard
an item is written to, and how many shards a reader of the index must read."""
from __future__ import annotations

import zlib

from chalicelib.config import config

# Pending refunds (the `pending-refunds` index): the reconciler reads every one of these shards.
REFUND_SHARDS = 4


def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % shards


def refund_shard(refund_id: str) -> int:
    """The shard of a pending refund."""
    return shard_of(refund_id, REFUND_SHARDS)


def window_shard(session_id: str) -> int:
    """The shard of a session whose refund window is open (the `open-refund-windows` index); the
    window closer reads `config().window_shards` of them."""
    return shard_of(session_id, config().window_shards)
