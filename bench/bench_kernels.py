"""Attention benchmark: Triton flash attention vs torch SDPA vs the plain-math reference.

Sweeps sequence length and head dim; times the forward and forward+backward of each provider in the
same run and prints a table with TFLOP/s per row, then one JSON line with every row.

FLOPs counted: forward 4 * B * H * T * S * D (two matmuls), halved when causal; forward+backward
3.5x the forward (the backward does five matmuls to the forward's two).

On a GPU: bf16 by default, timed with triton.testing.do_bench (median). On a CPU, Triton timings need a GPU
(the interpreter measures Python, not the kernel), so only the CPU paths (reference and SDPA) run, in
fp32 on small sizes, timed with the best of a few wall-clock repeats; this finishes in well under a minute.
Timings are reported, never asserted.

Run: .venv/bin/python bench/bench_kernels.py [--seq-lens 512 1024] [--head-dims 64 128] [--no-causal] [--threads 2]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kernels.reference import attention_ref, attention_sdpa  # noqa: E402

GPU = torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0")


def attention_flops(B, H, T, D, causal):
    flops = 4.0 * B * H * T * T * D
    return flops / 2 if causal else flops


def cpu_time_ms(fn, min_reps=5, max_reps=30, budget_s=0.3):
    """Best wall-clock milliseconds of fn() after one warm-up call: at least min_reps runs, more while
    under budget_s. The minimum is the figure least disturbed by other processes on a shared CPU."""
    fn()
    times = []
    spent = time.perf_counter()
    while len(times) < min_reps or (len(times) < max_reps and time.perf_counter() - spent < budget_s):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def gpu_time_ms(fn):
    """Median milliseconds over ~100 ms of repeats after ~100 ms of warm-up (CUDA events, L2 flushed each time)."""
    import triton.testing
    return triton.testing.do_bench(fn, warmup=100, rep=100, return_mode="median")


def providers():
    found = {"reference": attention_ref, "sdpa": attention_sdpa}
    if GPU:
        from kernels.flash_attention import flash_attention
        found = {"triton": flash_attention, **found}
    return found


def run_case(name, fn, B, H, T, D, causal, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(T + D)
    q, k, v = (torch.randn(B, H, T, D, generator=g).to(device, dtype).requires_grad_() for _ in range(3))
    do = torch.randn(B, H, T, D, generator=g).to(device, dtype)
    timer = gpu_time_ms if GPU else cpu_time_ms

    def fwd():
        with torch.no_grad():
            fn(q, k, v, causal)

    def fwd_bwd():
        q.grad = k.grad = v.grad = None
        fn(q, k, v, causal).backward(do)

    flops = attention_flops(B, H, T, D, causal)
    row = dict(provider=name, B=B, H=H, T=T, D=D, causal=causal, dtype=str(dtype).replace("torch.", ""))
    try:
        row["fwd_ms"] = timer(fwd)
        row["fwd_bwd_ms"] = timer(fwd_bwd)
    except torch.OutOfMemoryError:
        row["fwd_ms"] = row["fwd_bwd_ms"] = float("nan")
        torch.cuda.empty_cache()
    row["fwd_tflops"] = flops / (row["fwd_ms"] * 1e-3) / 1e12
    row["fwd_bwd_tflops"] = 3.5 * flops / (row["fwd_bwd_ms"] * 1e-3) / 1e12
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq-lens", type=int, nargs="+", default=None)
    p.add_argument("--head-dims", type=int, nargs="+", default=None)
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--no-causal", action="store_true")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (1 keeps timings steady on a shared machine)")
    p.add_argument("--max-reference-len", type=int, default=4096,
                   help="skip the plain-math reference above this length (it stores the T x T matrix)")
    args = p.parse_args()

    if GPU:
        device, dtype = "cuda", torch.bfloat16
        seq_lens = args.seq_lens or [512, 1024, 2048, 4096, 8192]
        head_dims = args.head_dims or [64, 128]
        B, H = args.batch or 4, args.heads or 16
        print(f"# device: {torch.cuda.get_device_name()}, timer: triton.testing.do_bench")
    else:
        device, dtype = "cpu", torch.float32
        torch.set_num_threads(args.threads)
        seq_lens = args.seq_lens or [128, 256, 512, 1024]
        head_dims = args.head_dims or [32, 64]
        B, H = args.batch or 1, args.heads or 4
        print("# Triton timings need a GPU; on this CPU only the reference and SDPA paths are timed "
              f"(fp32, torch threads: {torch.get_num_threads()}, best of 5-30 wall-clock runs).")
    causal = not args.no_causal

    rows = []
    header = f"{'provider':<10} {'T':>6} {'D':>4} {'causal':>6} {'dtype':>8} {'fwd ms':>9} {'fwd TF/s':>9} " \
             f"{'f+b ms':>9} {'f+b TF/s':>9}"
    print(header)
    print("-" * len(header))
    for D in head_dims:
        for T in seq_lens:
            for name, fn in providers().items():
                if name == "reference" and T > args.max_reference_len:
                    continue
                r = run_case(name, fn, B, H, T, D, causal, dtype, device)
                rows.append(r)
                print(f"{r['provider']:<10} {T:>6} {D:>4} {str(causal):>6} {r['dtype']:>8} {r['fwd_ms']:>9.3f} "
                      f"{r['fwd_tflops']:>9.4f} {r['fwd_bwd_ms']:>9.3f} {r['fwd_bwd_tflops']:>9.4f}", flush=True)
    device_name = torch.cuda.get_device_name() if GPU else "cpu"
    print(json.dumps({"bench": "kernels", "device": device_name, "triton_timed": GPU, "rows": rows}))


if __name__ == "__main__":
    main()
