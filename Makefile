# AtomMem: one-command set-up, tests, training and benchmarks.
# Every target depends on .venv, so a fresh clone needs nothing else.
PY      := .venv/bin/python
PRESET  ?= tiny
OUT     ?= runs/$(PRESET)
NPROC   ?= 2
ABL_PRESET ?= ablate
ABL_JOBS ?= 2

.PHONY: install test test-fast train eval-long train-ddp bench ablations clean

install: .venv/.installed

.venv/.installed: pyproject.toml
	test -d .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 triton==3.6.0 "numpy<2.4"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: install
	TRITON_INTERPRET=1 $(PY) -m pytest -n 2 -q

test-fast: install
	TRITON_INTERPRET=1 $(PY) -m pytest -n 2 -q -m "not slow"

train: install
	$(PY) -m atommem.cli train --preset $(PRESET) --out $(OUT)

# The run's SFT and SFT+GRPO policies at 1x, 4x and 16x its training length, on its own evaluation seeds and
# episode count (so the 1x and 4x cells are make train's episodes), with where each failed episode first departed
# from the teacher; EVAL_N=n overrides the count.
eval-long: install
	@test -f $(OUT)/config.json || { echo "no run in $(OUT): run make train first, or set OUT=runs/NAME"; exit 2; }
	set -e; set -- $$($(PY) -c "import json; c = json.load(open('$(OUT)/config.json')); \
	  print(c['train_tokens'], c['eval_n'], c['eval_seed'])"); \
	for p in policy_sft policy; do \
	  $(PY) -m atommem.cli eval --ckpt $(OUT)/$$p --lengths $$1,$$(($$1 * 4)),$$(($$1 * 16)) \
	    --n $${EVAL_N:-$$2} --seed $$3 --divergences --out $(OUT)/eval_long_$$p; done

# Data-parallel training (rl/distributed.py): NPROC processes, gloo on CPU, nccl + bf16 autocast on GPUs.
train-ddp: install
	.venv/bin/torchrun --standalone --nproc_per_node=$(NPROC) -m rl.ddp_train --preset $(PRESET) --out $(OUT)

bench: install
	{ echo; echo "## make bench, $$(date -u +%Y-%m-%d), $$(uname -m), $$(nproc) cores"; echo '```'; \
	  $(PY) bench/bench_kernels.py && $(PY) bench/bench_kernels_bandwidth.py && $(PY) bench/bench_engine.py && $(PY) bench/bench_agent.py; \
	  echo '```'; } 2>&1 | tee -a bench/RESULTS.md

clean:
	rm -rf .venv runs .pytest_cache

ablations: install
	$(PY) -m rl.ablations --preset $(ABL_PRESET) --jobs $(ABL_JOBS)
