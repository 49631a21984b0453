"""lcengine: biologically-motivated learning rules on hand-written kernels, no autograd.

Importing it changes no process-wide state: the CPU backend applies its thread and malloc
settings when it is made (`lcengine.backend.get_backend`), and the `lcengine` command sets
OpenBLAS's idle timeout before NumPy loads (README, "Threads and the environment").
"""

__version__ = "0.1.0"
