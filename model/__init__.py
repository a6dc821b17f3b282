"""A minimal GPT written here: config, transformer, KV cache, generation, scoring, checkpoints, tokenizer.

Depends on `kernels` (attention, decode attention, RMSNorm) and nothing else of this project: it knows
nothing about memory operations, tasks or training.

    from model import GPT, GPTConfig, generate, score, save_model, load_model, Tokenizer
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))

Tests: .venv/bin/python -m pytest -n 2 tests/test_model.py tests/test_generate.py tests/test_checkpoint.py tests/test_tokenizer.py
"""
from model.checkpoint import (CheckpointError, load_model, load_tensors, read_json, save_model, save_tensors_atomic,
                              write_json_atomic)
from model.config import PRESETS, GPTConfig
from model.generate import Generation, generate, score
from model.gpt import GPT
from model.kv_cache import KVCache
from model.tokenizer import Tokenizer

__all__ = ["GPT", "GPTConfig", "PRESETS", "KVCache", "Generation", "generate", "score", "Tokenizer",
           "CheckpointError", "save_model", "load_model", "save_tensors_atomic", "load_tensors",
           "write_json_atomic", "read_json"]
