"""Compile every Triton kernel of this package for a GPU target, on a machine without a GPU.

The interpreter accepts code that a GPU compiler rejects (a jit kernel reading a plain Python global,
dot shapes under 16, a type that changes across a loop), and it cannot tell whether tiles fit in
shared memory. This module runs the real compiler (Triton -> PTX -> cubin with the bundled ptxas) for
an H100 (sm_90) on the configurations the wrappers launch, and checks each kernel's shared memory
against the H100 limit. No launch happens, so no driver is needed.

It must run with TRITON_INTERPRET unset (the decorator reads it at import time), hence in its own
process: `env -u TRITON_INTERPRET .venv/bin/python -m kernels.compile_check [--quick]`.
tests/test_kernels_compile.py runs it that way. Exit status 1 if any kernel fails.
"""
import argparse
import itertools
import os
import sys

import torch

H100_SHARED_BYTES = 232448  # 227 KiB of shared memory per block on sm_90
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def cases(quick):
    """Yield (label, kernel, pointer types, float args, constexprs, num_warps, num_stages)."""
    import triton

    from kernels import flash_attention as fa
    from kernels import flash_decode as fd
    from kernels import fused_cross_entropy as ce
    from kernels import rmsnorm as rn

    dtypes = ["bf16", "fp32"] if quick else list(DTYPES)
    head_dims = [48, 128] if quick else [16, 48, 64, 128]
    for dt, D, causal in itertools.product(dtypes, head_dims, [True, False] if not quick else [True]):
        p, BD = "*" + dt, max(16, triton.next_power_of_2(D))
        BM, BN, w, st = fa._config(D, DTYPES[dt], backward=False)
        meta = dict(HEAD_D=D, BLOCK_D=BD, BLOCK_M=BM, BLOCK_N=BN, CAUSAL=causal, UPCAST=False,
                    DOT_PREC=fa._dot_precision(DTYPES[dt]))
        yield f"attn fwd {dt} D={D} causal={causal}", fa._attn_fwd, dict(Q=p, K=p, V=p, O=p, LSE="*fp32"), \
            ("qk_scale",), meta, w, st
        BM, BN, w, st = fa._config(D, DTYPES[dt], backward=True)
        meta = dict(meta, BLOCK_M=BM, BLOCK_N=BN)
        ptrs = dict(Q=p, K=p, V=p, DO=p, O=p, LSE="*fp32", DELTA="*fp32", DK=p, DV=p, DQ=p)
        yield f"attn delta {dt} D={D}", fa._attn_bwd_delta, ptrs, (), dict(HEAD_D=D, BLOCK_D=BD, BLOCK_M=BM), 4, 1
        for kernel in (fa._attn_bwd_dkdv, fa._attn_bwd_dq):
            yield f"{kernel.__name__} {dt} D={D} causal={causal}", kernel, ptrs, ("qk_scale", "sm_scale"), meta, w, st

    for dt, D, splits in itertools.product(dtypes, [64, 128], [1, 8]):
        p, BD = "*" + dt, max(16, triton.next_power_of_2(D))
        ptrs = dict(Q=p, K=p, V=p, OUT=p, LENGTHS="*i32", M_OUT="*fp32", L_OUT="*fp32", ACC_OUT="*fp32",
                    M_IN="*fp32", L_IN="*fp32", ACC_IN="*fp32")
        meta = dict(HEAD_D=D, BLOCK_D=BD, BLOCK_N=64, NUM_SPLITS=splits, UPCAST=False)
        yield f"decode split {dt} D={D} splits={splits}", fd._decode_split, ptrs, ("qk_scale",), meta, 4, 3
        meta = dict(HEAD_D=D, BLOCK_D=BD, NUM_SPLITS=splits, BLOCK_S=max(2, triton.next_power_of_2(splits)))
        yield f"decode combine {dt} D={D} splits={splits}", fd._combine, ptrs, (), meta, 4, 3

    for dt, D in itertools.product(dtypes, [48, 4096]):
        p = "*" + dt
        BD, BR, w = rn._tiles(D)
        ptrs = dict(X=p, W="*fp32", Y=p, RSTD="*fp32", DY=p, DX=p, DW_PART="*fp32")
        meta = dict(D=D, BLOCK_D=BD, BLOCK_R=BR)
        yield f"rms fwd {dt} D={D}", rn._rms_fwd, ptrs, ("eps",), meta, w, 3
        yield f"rms bwd {dt} D={D}", rn._rms_bwd, ptrs, (), meta, w, 3

    for dt in dtypes:
        p = "*" + dt
        ptrs = dict(X=p, DX=p, TARGET="*i64", LOSS="*fp32", LSE="*fp32", GRAD="*fp32", N_VALID="*fp32")
        yield f"ce fwd {dt}", ce._ce_fwd, ptrs, (), dict(BLOCK_V=4096), 8, 3
        yield f"ce bwd {dt}", ce._ce_bwd, ptrs, (), dict(BLOCK_V=4096), 8, 3


def compile_one(kernel, ptrs, floats, constexprs, warps, stages):
    """Compile for sm_90 and return the shared memory (bytes) the kernel needs."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    # Every argument that is not a pointer, a float or a constexpr is an int32 (sizes and strides).
    signature = {name: "constexpr" if name in constexprs else ptrs.get(name, "fp32" if name in floats else "i32")
                 for name in kernel.arg_names}
    src = ASTSource(kernel, signature, constexprs=constexprs)
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    return compiled.metadata.shared


def main():
    parser = argparse.ArgumentParser(description="Compile the Triton kernels for sm_90 without a GPU.")
    parser.add_argument("--quick", action="store_true", help="bf16/fp32 and two head dims only")
    args = parser.parse_args()
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        sys.exit("unset TRITON_INTERPRET: the interpreter replaces the compiler")
    failures = 0
    for label, kernel, ptrs, floats, constexprs, warps, stages in cases(args.quick):
        try:
            shared = compile_one(kernel, ptrs, floats, constexprs, warps, stages)
            status = "ok" if shared <= H100_SHARED_BYTES else "TOO MUCH SHARED MEMORY"
            failures += status != "ok"
            print(f"{status:<4} {label:<45} shared={shared} B")
        except Exception as exc:  # report every kernel, then fail once
            failures += 1
            print(f"FAIL {label}: {type(exc).__name__}: {str(exc)[-400:]}")
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
