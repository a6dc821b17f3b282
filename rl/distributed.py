"""Data-parallel training with torch.distributed: the process group, rank helpers, reductions and sharding.

How to run
    make train-ddp NPROC=2 PRESET=smoke          # two CPU processes (gloo), a minute
    make train-ddp NPROC=1 PRESET=small          # one GPU (nccl, bf16 autocast): what `small` is sized for
    torchrun --standalone --nproc_per_node=N -m rl.ddp_train --preset P [--out DIR] [--resume] [...]
`rl.ddp_train` takes the options of `atommem-cli train`. Without torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK) every function here is a no-op for one process, and the training code runs exactly as before (on the
GPU when there is one: `ATOMMEM_DEVICE=cpu` keeps it on the CPU).

Expected behaviour with N processes
    * Backend gloo on CPU, nccl when CUDA is available (process r uses cuda:LOCAL_RANK). Precision: bf16 autocast
      around the training forward passes on the GPU, plain fp32 on the CPU (SFT can ask for bf16 autocast on a CPU
      with native bf16: `--set cpu_bf16=true`); printed once at start.
    * SFT: every process draws the same global batch of `sft_batch` rows (same seed, same order) and takes its
      contiguous slice (`shard`), so N slices of about B/N rows make up the one-process batch. Each process divides
      its summed token loss by the GLOBAL number of action tokens of the batch, so the gradients summed over the
      processes equal the one-process gradient up to float rounding; the sum is taken before clipping, and every
      process then applies the same clipped gradient: the weights stay identical everywhere.
    * GRPO: the task list of an iteration is drawn in full by every process, then sharded; each process rolls out
      whole groups (a group is never split), computes its groups' advantages locally, keeps a share of the rows
      proportional to its row count (the `rl_max_rows` cap is global), and normalises its token loss by the global
      token count (all-reduced). Gradients are summed as in SFT. Requires rl_tasks >= N.
    * Only rank 0 writes: metrics.jsonl, checkpoints, the tokenizer, policies, plots, results. Metrics are reduced
      across processes first (`reduce_metrics`). In-training evaluations run on rank 0 only.
    * Resume works with any N: a checkpoint holds the full model and optimizer, every process loads the same one,
      and the loop position (step, epoch, cursor / iteration) is global.
    * Seeds: episodes depend on (seed, iteration, task index) only, never on N. Sampling uses one generator per
      process seeded from (seed, iteration, index of its first task); with one process this is the one-process
      seed. Samples cannot be fully independent of N, because a process samples its groups in one lockstep batch.

Why a hand-written all-reduce rather than DistributedDataParallel: the training code calls `model.hidden` and
`model.head` directly (only the action positions reach the head), which bypasses the `forward` that DDP hooks;
GRPO accumulates micro-batches (DDP would need `no_sync`); and the loss is already normalised by the global token
count, so the gradients must be summed, not averaged. One flat all-reduce per step after backward costs the same
as DDP's buckets on models this small. `average_gradients` (sum / N) is there for losses normalised per process.

Run the tests: `.venv/bin/python -m pytest tests/test_distributed.py -q`.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import os

import torch
import torch.distributed as td

from model.checkpoint import default_device

__all__ = ["init", "rank", "world", "is_main", "device", "precision", "autocast", "cpu_bf16_supported",
           "all_reduce_sum", "all_reduce_mean", "all_gather_ints", "reduce_metrics", "sum_gradients",
           "average_gradients", "shard", "row_quota",
           "barrier", "cleanup"]

_state = {"device": None, "owned": False}


def init(timeout_minutes: float = 120.0) -> dict:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
    Without those variables: nothing to do, one process. Returns {rank, world, backend, device, precision}."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not td.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
        if torch.cuda.is_available():
            if local >= torch.cuda.device_count():
                raise RuntimeError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs: lower nproc")
            torch.cuda.set_device(local)
            _state["device"], backend = torch.device("cuda", local), "nccl"
        else:
            _state["device"], backend = torch.device("cpu"), "gloo"
        td.init_process_group(backend, rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]),
                              timeout=datetime.timedelta(minutes=timeout_minutes))
        _state["owned"] = True
    return {"rank": rank(), "world": world(), "backend": td.get_backend() if td.is_initialized() else "none",
            "device": str(device()), "precision": precision(device())}


def rank() -> int:
    return td.get_rank() if td.is_initialized() else 0


def world() -> int:
    return td.get_world_size() if td.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def device() -> torch.device:
    """Where this process trains: cuda:LOCAL_RANK under torchrun with CUDA; one process: default_device()."""
    if _state["device"] is None:
        _state["device"] = default_device()
    return _state["device"]


def precision(dev) -> str:
    return "bf16 autocast" if torch.device(dev).type == "cuda" else "fp32"


@functools.cache
def cpu_bf16_supported() -> bool:
    """Whether this CPU has native bf16 dot products (AVX512-BF16 or AMX), where bf16 matmuls run faster."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check is not None and check())


def autocast(dev, cpu_bf16: bool = False):
    """bf16 autocast for a model on the GPU. On the CPU nothing at all (numerics unchanged), unless `cpu_bf16` is
    asked for and the CPU has native bf16 (measured on a 2-core AVX512-BF16 CPU: a fixed 32 x 96-token tiny-model
    step 1.45x faster, the real SFT loop with its short rows about 7%); weights, gradients and the optimizer stay
    fp32 either way."""
    if torch.device(dev).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and cpu_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if td.get_backend() == "nccl" else torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over processes, as a new tensor on tensor's device (the tensor itself with one process)."""
    if world() == 1:
        return tensor
    out = tensor.detach().to(_comm_device(), copy=True)
    td.all_reduce(out, op=td.ReduceOp.SUM)
    return out.to(tensor.device)


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over processes, as a new tensor (the tensor itself with one process)."""
    if world() == 1:
        return tensor
    return all_reduce_sum(tensor) / world()


def all_gather_ints(value: int) -> list[int]:
    """[value of rank 0, value of rank 1, ...]; [value] with one process."""
    if world() == 1:
        return [int(value)]
    mine = torch.tensor([int(value)], dtype=torch.long, device=_comm_device())
    parts = [torch.zeros_like(mine) for _ in range(world())]
    td.all_gather(parts, mine)
    return [int(p.item()) for p in parts]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.numel() == 1)


def reduce_metrics(values: dict, weight: float = 1.0, sum_keys=()) -> dict:
    """Numeric metrics combined over processes: a mean weighted by `weight` (e.g. this process's episode count),
    or a sum for `sum_keys` (counts, throughputs). A key missing on some processes is combined over the others;
    other values are kept as they are locally. With one process: a copy of `values`."""
    out = dict(values)
    if world() == 1:
        return out
    local = {k: _is_number(v) for k, v in values.items()}
    every: list = [None] * world()
    td.all_gather_object(every, local)
    keys = sorted({k for d in every for k, numeric in d.items() if numeric})
    if not keys:
        return out
    buf = torch.zeros(len(keys), 2, dtype=torch.float64)
    for i, k in enumerate(keys):
        if local.get(k):
            v = float(values[k])
            buf[i] = torch.tensor([v, 1.0] if k in sum_keys else [v * weight, weight], dtype=torch.float64)
    buf = all_reduce_sum(buf.to(_comm_device())).cpu()
    for i, k in enumerate(keys):
        total, norm = buf[i].tolist()
        if k in sum_keys:
            out[k] = int(round(total)) if isinstance(values.get(k), int) else total
        else:
            out[k] = total / norm if norm > 0 else float("nan")
    return out


def _reduce_gradients(model, mean: bool) -> None:
    if world() == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    # A parameter no process touched keeps grad None (the optimizer skips it, as with one process); one that only
    # some processes touched gets zeros elsewhere, so that every process sends the same buffers.
    has = all_reduce_sum(torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=_comm_device()))
    used = [p for p, n in zip(params, has.tolist()) if n > 0]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    for dtype in sorted({p.grad.dtype for p in used}, key=str):
        group = [p for p in used if p.grad.dtype == dtype]
        flat = torch.cat([p.grad.reshape(-1) for p in group]).to(_comm_device())
        td.all_reduce(flat, op=td.ReduceOp.SUM)
        if mean:
            flat /= world()
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


def sum_gradients(model) -> None:
    """grad <- sum of the processes' grads: for losses already divided by a global count (what training uses)."""
    _reduce_gradients(model, mean=False)


def average_gradients(model) -> None:
    """grad <- mean of the processes' grads: for losses normalised per process."""
    _reduce_gradients(model, mean=True)


def shard(items, rank_: int | None = None, world_: int | None = None) -> list:
    """This process's contiguous slice of `items` (sizes differ by at most one; all of it with one process)."""
    r = rank() if rank_ is None else rank_
    w = world() if world_ is None else world_
    items = list(items)
    return items[len(items) * r // w: len(items) * (r + 1) // w]


def row_quota(counts: list[int], cap: int, rank_: int | None = None) -> int:
    """How many of its counts[rank] rows a process keeps so that all keep min(cap, sum) together, each in
    proportion to its count (largest remainders get the leftovers; ties go to the lower rank)."""
    r = rank() if rank_ is None else rank_
    total = sum(counts)
    if total <= cap:
        return counts[r]
    base = [cap * n // total for n in counts]
    order = sorted(range(len(counts)), key=lambda i: (-(cap * counts[i] % total), i))
    extra = set(order[: cap - sum(base)])
    return base[r] + (r in extra)


def barrier() -> None:
    if world() > 1:
        td.barrier()


def cleanup() -> None:
    """Leave the process group if init() joined it."""
    if _state["owned"] and td.is_initialized():
        td.destroy_process_group()
    _state["owned"], _state["device"] = False, None
