"""lcengine benchmarks: `python benchmarks/bench_lc.py` or `lcengine bench ops`."""
