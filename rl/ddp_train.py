"""Data-parallel `atommem-cli train`: the same command and options, run by torchrun (see rl/distributed.py).

    torchrun --standalone --nproc_per_node=2 -m rl.ddp_train --preset smoke --out runs/smoke-ddp
    make train-ddp NPROC=2 PRESET=smoke

Joins the process group described by torchrun's environment (or runs as one process without it), says once which
backend, device and precision it uses, runs the training command, and leaves the group.
"""
from __future__ import annotations

from rl import distributed as dist
from rl.cli_train import train


def main(argv=None) -> None:
    info = dist.init()
    if dist.is_main():
        print(f"[ddp] {info['world']} process(es), backend {info['backend']}, device {info['device']}, "
              f"precision {info['precision']}", flush=True)
    try:
        train.main(args=argv, prog_name="rl.ddp_train")
    finally:
        dist.cleanup()


if __name__ == "__main__":
    main()
