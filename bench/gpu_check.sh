#!/usr/bin/env bash
# The checks that need a GPU, in one call: the kernel and model tests compiled for the card (bf16 included), the
# kernel benchmarks, one smoke training run on the GPU (Triton kernels and bf16 autocast in the loop), and the
# agent benchmark. Each step has its own time limit and its own log under $OUT; a failed step does not stop the
# next. Uses the python that holds torch and triton (set PY to choose another).
#     OUT=/tmp/gpu_check bash bench/gpu_check.sh [POLICY_DIR]
set -u
OUT=${OUT:-/tmp/gpu_check}
POLICY=${1:-runs/latest}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TRITON_INTERPRET=0

step() {
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    echo "== $name: exit $rc, $(($(date +%s) - start)) s"
    tail -n "${TAIL:-20}" "$OUT/$name.log" | cut -c1-220
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv,noheader
$PY -c "import torch, triton; print('torch', torch.__version__, '| triton', triton.__version__)"
TAIL=8 step tests 300 $PY -m pytest -q -n 8 -p no:cacheprovider tests/test_kernels_attention.py \
    tests/test_kernels_decode.py tests/test_kernels_rmsnorm.py tests/test_kernels_cross_entropy.py \
    tests/test_kernels_dispatch.py tests/test_model.py tests/test_generate.py tests/test_checkpoint.py
TAIL=14 step bench_kernels 150 $PY bench/bench_kernels.py
TAIL=16 step bench_bandwidth 100 $PY bench/bench_kernels_bandwidth.py
TAIL=22 step train_smoke 200 $PY -m atommem.cli train --preset smoke --out /tmp/smoke_run --no-progress
TAIL=16 step bench_agent 120 $PY bench/bench_agent.py --ckpt "$POLICY" --max-len 16k
