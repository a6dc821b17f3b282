"""Bandwidth-bound kernels: KV-cache decode attention, RMSNorm and cross-entropy, Triton vs the PyTorch paths.

These kernels do little arithmetic per byte, so the figure that matters is achieved bandwidth: the fewest bytes
each must move through memory (every input read once, every output written once) over its time.
    decode   K and V caches read up to each row's length (q and the output are negligible)
    rmsnorm  forward: x read, y written; forward+backward adds dy read, dx written (x read again is not counted)
    xent     forward: the logits read; forward+backward adds the logits' gradient written
Providers: `triton` (GPU only), `reference` (kernels/reference.py, the plain-math version the tests trust) and, for
decode, `sdpa` (torch's fused attention with a length mask).

On a GPU: bf16, timed with triton.testing.do_bench (median of its repeats). On a CPU only the PyTorch paths run, in
fp32 on small sizes (the interpreter would time Python, not the kernel). Timings are printed, never asserted.

Run: .venv/bin/python bench/bench_kernels_bandwidth.py [--threads 2]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_kernels import GPU, cpu_time_ms, gpu_time_ms  # noqa: E402
from kernels.reference import cross_entropy_ref, decode_attention_ref, rms_norm_ref  # noqa: E402


def decode_sdpa(q, k_cache, v_cache, lengths):
    """torch's fused attention for one query per row, positions at or past a row's length masked out."""
    valid = torch.arange(k_cache.shape[2], device=q.device)[None, :] < lengths[:, None]  # (B, S_max)
    out = F.scaled_dot_product_attention(q[:, :, None], k_cache, v_cache, attn_mask=valid[:, None, None, :])
    return out[:, :, 0]


def decode_cases(gpu):
    """(B, H, S_max, D): a batch of agent episodes decoding against a short cache, up to one long sequence."""
    if gpu:
        return [(64, 4, 512, 32), (128, 16, 2048, 64), (8, 16, 16384, 128), (1, 32, 131072, 128)]
    return [(64, 4, 512, 32), (8, 8, 2048, 64)]


def bench_decode(dev, dtype, timer, gpu):
    from_triton = {}
    if gpu:
        from kernels.flash_decode import decode_attention
        from_triton = {"triton": decode_attention}
    rows = []
    for B, H, S, D in decode_cases(gpu):
        g = torch.Generator().manual_seed(B * S + D)
        q = torch.randn(B, H, D, generator=g).to(dev, dtype)
        k, v = (torch.randn(B, H, S, D, generator=g).to(dev, dtype) for _ in range(2))
        lengths = torch.randint(S // 2, S + 1, (B,), generator=g).to(dev)
        moved = 2 * int(lengths.sum()) * H * D * k.element_size()
        for name, fn in {**from_triton, "reference": decode_attention_ref, "sdpa": decode_sdpa}.items():
            ms = timer(lambda: fn(q, k, v, lengths))
            rows.append(dict(kernel="decode", provider=name, shape=f"B{B} H{H} S{S} D{D}", ms=ms,
                             gbps=moved / (ms * 1e-3) / 1e9))
    return rows


def bench_fwd_bwd(kernel, fns, make, bytes_fwd, bytes_bwd, cases, timer):
    rows = []
    for shape in cases:
        leaves, grad_out = make(shape)
        for name, fn in fns.items():
            def fwd():
                with torch.no_grad():
                    fn(*leaves)

            def fwd_bwd():
                for t in leaves:
                    if t.requires_grad:
                        t.grad = None
                fn(*leaves).backward(grad_out)

            ms, ms_fb = timer(fwd), timer(fwd_bwd)
            label = " x ".join(str(s) for s in shape)
            rows.append(dict(kernel=kernel, provider=name, shape=label, ms=ms,
                             gbps=bytes_fwd(shape) / (ms * 1e-3) / 1e9, fwd_bwd_ms=ms_fb,
                             fwd_bwd_gbps=(bytes_fwd(shape) + bytes_bwd(shape)) / (ms_fb * 1e-3) / 1e9))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 keeps timings steady)")
    args = p.parse_args()
    gpu = GPU
    if gpu:
        dev, dtype, timer = "cuda", torch.bfloat16, gpu_time_ms
        print(f"# device: {torch.cuda.get_device_name()}, bf16, timer: triton.testing.do_bench")
    else:
        dev, dtype, timer = "cpu", torch.float32, cpu_time_ms
        torch.set_num_threads(args.threads)
        print(f"# CPU: the PyTorch paths only, fp32, {torch.get_num_threads()} torch threads, best of 5-30 runs")
    size = torch.finfo(dtype).bits // 8

    rows = bench_decode(dev, dtype, timer, gpu)

    def rms_make(shape):
        g = torch.Generator().manual_seed(sum(shape))
        x = torch.randn(*shape, generator=g).to(dev, dtype).requires_grad_()
        w = (1 + 0.1 * torch.randn(shape[-1], generator=g)).to(dev, dtype).requires_grad_()
        return (x, w), torch.randn(*shape, generator=g).to(dev, dtype)

    rms_fns = {"reference": rms_norm_ref}
    ce_fns = {"reference": cross_entropy_ref}
    if gpu:
        from kernels.fused_cross_entropy import cross_entropy
        from kernels.rmsnorm import rms_norm
        rms_fns, ce_fns = {"triton": rms_norm, **rms_fns}, {"triton": cross_entropy, **ce_fns}
    rms_cases = [(8192, 1024), (16384, 4096)] if gpu else [(2048, 256), (4096, 1024)]
    rows += bench_fwd_bwd("rmsnorm", rms_fns, rms_make, lambda s: 2 * s[0] * s[1] * size,
                          lambda s: 2 * s[0] * s[1] * size, rms_cases, timer)

    def ce_make(shape):
        N, V = shape
        g = torch.Generator().manual_seed(N + V)
        logits = torch.randn(N, V, generator=g).to(dev, dtype).requires_grad_()
        return (logits, torch.randint(0, V, (N,), generator=g).to(dev)), torch.tensor(1.0, device=dev)

    ce_cases = [(8192, 2048), (4096, 32768)] if gpu else [(1024, 1536), (512, 8192)]
    rows += bench_fwd_bwd("xent", ce_fns, ce_make, lambda s: s[0] * s[1] * size, lambda s: s[0] * s[1] * size,
                          ce_cases, timer)

    print(f"{'kernel':<8} {'provider':<10} {'shape':<24} {'fwd ms':>9} {'fwd GB/s':>9} {'f+b ms':>9} {'f+b GB/s':>9}")
    for r in rows:
        fb = f"{r['fwd_bwd_ms']:>9.3f} {r['fwd_bwd_gbps']:>9.1f}" if "fwd_bwd_ms" in r else f"{'-':>9} {'-':>9}"
        print(f"{r['kernel']:<8} {r['provider']:<10} {r['shape']:<24} {r['ms']:>9.3f} {r['gbps']:>9.1f} {fb}")
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    print(json.dumps({"bench": "kernels_bandwidth", "device": device_name, "dtype": str(dtype), "rows": rows}))


if __name__ == "__main__":
    main()
