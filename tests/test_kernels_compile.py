"""Every Triton kernel compiles for an H100 (sm_90) and fits its shared memory, checked without a GPU.

The interpreter accepts code a GPU compiler rejects, so this runs the real compiler in a subprocess with
TRITON_INTERPRET unset (see kernels/compile_check.py). About 15 s cold, hence the slow marker.
Run: .venv/bin/python -m pytest tests/test_kernels_compile.py
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_kernels_compile_for_sm90():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-m", "kernels.compile_check", "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "0 failure(s)" in done.stdout
