"""Data: prepared shard sets (see docs/data.md) and the minibatch loader."""

from .errors import DataError
from .loader import Loader
from .shards import ShardSet, open_shards

__all__ = ["DataError", "Loader", "ShardSet", "open_shards"]
