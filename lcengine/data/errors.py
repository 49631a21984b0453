"""The one exception of the data pipeline: a bad input or shard file, said in one line."""


class DataError(RuntimeError):
    """A source or shard file is missing, damaged or foreign; the message names it and the fix."""
