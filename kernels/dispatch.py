"""Chooses, per call, between a Triton kernel and its PyTorch reference.

The switch is the environment variable ATOMMEM_KERNELS:
    auto (default)  CUDA tensors -> Triton. CPU tensors -> reference, unless TRITON_INTERPRET=1,
                    in which case Triton runs on the CPU through its interpreter (slow, for tests).
    reference       always the PyTorch reference.
    triton          always Triton (on CPU this needs TRITON_INTERPRET=1).
A kernel may also refuse a shape it does not support (e.g. a head dim over 128); it then degrades
to the reference. The first choice made for each kernel is logged once to stderr.

Knows nothing about the kernels themselves. Test: .venv/bin/python -m pytest tests/test_kernels_dispatch.py
"""
import logging
import os
import sys

log = logging.getLogger("atommem.kernels")
if not log.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False

MODES = ("auto", "reference", "triton")
_logged = {}


def mode():
    """The ATOMMEM_KERNELS setting, validated."""
    value = os.environ.get("ATOMMEM_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"ATOMMEM_KERNELS={value!r}; expected one of {MODES}")
    return value


def interpreting():
    """True when Triton kernels run on the CPU through the interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def choose(kernel, tensor, supported=True, why=""):
    """Return "triton" or "reference" for this call and log the first decision per kernel.

    `supported` is False when the Triton kernel cannot handle this shape/dtype; `why` says why.
    """
    m = mode()
    if m == "reference":
        backend, reason = "reference", "ATOMMEM_KERNELS=reference"
    elif not supported:
        backend, reason = "reference", f"Triton kernel does not support this input ({why})"
    elif m == "triton":
        backend, reason = "triton", "ATOMMEM_KERNELS=triton"
    elif tensor.is_cuda:
        backend, reason = "triton", "CUDA tensors"
    elif interpreting():
        backend, reason = "triton", "CPU tensors with TRITON_INTERPRET=1 (interpreted, slow)"
    else:
        backend, reason = "reference", "CPU tensors; Triton needs a GPU (or TRITON_INTERPRET=1)"
    if _logged.get(kernel) != backend:
        _logged[kernel] = backend
        log.info("%s -> %s (%s)", kernel, backend, reason)
    return backend


def reset_log():
    """Forget what was logged, so the next choice per kernel is logged again (used by tests)."""
    _logged.clear()

