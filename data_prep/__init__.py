"""Converters from the official dataset files to lcengine shards: `lcengine prep DATASET ...`."""
