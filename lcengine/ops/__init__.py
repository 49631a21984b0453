"""Ops with several faces. Each family `F` has `F_ref` (NumPy reference, the definition), and may
have `F_cpu` (fast CPU) and `F_cuda` (CuPy launchers); every face exports the same function names.
`lcengine.backend` picks the face once; nothing else imports a face directly (tests and benchmarks
excepted). What the fast CPU faces are built on is in `cpu/`."""

#: op families and the functions each face of a family exports
FAMILIES = {
    "lc": ("lc_forward", "lc_backward_input", "lc_backward_weight", "lc_backward_weight_adam"),
    "conv": ("conv_forward", "conv_backward_input", "conv_backward_weight"),
    "activation": ("tanh", "tanh_backward"),
    "targets": ("difference_target", "tanh_regression"),
    "adam": ("adam_update",),
    "feedback": ("random_feedback",),
}
