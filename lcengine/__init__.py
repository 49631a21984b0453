"""lcengine: biologically-motivated learning rules on hand-written kernels, no autograd."""

__version__ = "0.1.0"
