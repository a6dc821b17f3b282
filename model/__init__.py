"""A minimal GPT written here: config, transformer, KV cache, generation, scoring, checkpoints, tokenizer."""
