"""GPTConfig: every number that defines the transformer's shape, plus named presets.

Owns the hyper-parameters of `model.gpt.GPT` and their (de)serialisation to a plain dict, which is
what a checkpoint stores in config.json. Knows nothing about training, data, tokenizers or devices.

Presets (parameter counts with a tied embedding and a ~1500-token vocabulary):
    smoke   d 64,  2 layers, 2 heads     tests only
    tiny    d 192, 4 layers, 6 heads     ~1.8M, trains on a CPU
    small   d 512, 8 layers, 8 heads     ~26M, one GPU
    base    d 768, 12 layers, 12 heads   ~86M

Example:
    cfg = GPTConfig.preset("tiny", vocab_size=1500)
    same = GPTConfig.from_dict(cfg.to_dict())
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

MLP_KINDS = ("swiglu", "gelu")


@dataclass
class GPTConfig:
    vocab_size: int = 1024
    d_model: int = 192
    n_layers: int = 4
    n_heads: int = 6
    mlp_ratio: float = 2.0      # hidden width = mlp_ratio * d_model (rounded up to a multiple of 32)
    mlp: str = "swiglu"         # "swiglu": W2(silu(W1 x) * W3 x); "gelu": W2(gelu(W1 x))
    max_seq_len: int = 512
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02
    prev_token: bool = False    # add an embedding of the previous token to each position's input (a shortcut
                                # to induction-style copying; bench/RESULTS.md measures it)
    qkv_conv: int = 0           # > 0: each layer's q, k and v at position t become a learned per-channel mix of
                                # those at positions t .. t-qkv_conv (a short causal convolution), so one head can
                                # match the tokens before a position against those before its own

    def __post_init__(self):
        self.validate()

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def mlp_hidden(self) -> int:
        hidden = int(round(self.mlp_ratio * self.d_model))
        return -(-hidden // 32) * 32

    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot build a model."""
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        for name in ("mlp_ratio", "rope_theta", "norm_eps", "init_std"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive number, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even for rotary embeddings")
        if not isinstance(self.prev_token, bool):
            raise ValueError(f"GPTConfig.prev_token must be true or false, got {self.prev_token!r}")
        if not isinstance(self.qkv_conv, int) or isinstance(self.qkv_conv, bool) or not 0 <= self.qkv_conv <= 8:
            raise ValueError(f"GPTConfig.qkv_conv must be a whole number in [0, 8], got {self.qkv_conv!r}")
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"GPTConfig.mlp must be one of {MLP_KINDS}, got {self.mlp!r}")

    # ---- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GPTConfig":
        """Build from a dict; unknown or missing keys raise ValueError (a checkpoint must be complete)."""
        if not isinstance(data, dict):
            raise ValueError(f"GPTConfig.from_dict expects a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        data = {**ADDED_LATER, **data}  # checkpoints written before a field existed
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown:
            raise ValueError(f"unknown GPTConfig fields: {unknown}")
        if missing:
            raise ValueError(f"missing GPTConfig fields: {missing}")
        return cls(**data)

    # ---- presets ---------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, vocab_size: int, **overrides) -> "GPTConfig":
        """A named size (smoke | tiny | small | base); keyword overrides replace single fields."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], "vocab_size": vocab_size, **overrides})

    def num_params(self) -> int:
        """Parameter count of the model this config builds (embedding counted once: it is tied)."""
        d, h = self.d_model, self.mlp_hidden
        mlp = (3 if self.mlp == "swiglu" else 2) * d * h
        per_layer = 4 * d * d + mlp + 2 * d  # qkv + out projection, MLP, two norm weights
        per_layer += (self.qkv_conv + 1) * 3 * d if self.qkv_conv else 0  # the convolution's taps
        embeddings = (2 if self.prev_token else 1) * self.vocab_size * d
        return embeddings + self.n_layers * per_layer + d


# Fields added after checkpoints were first written, with the value that reproduces those checkpoints' models.
ADDED_LATER = {"prev_token": False, "qkv_conv": 0}

PRESETS = {
    "smoke": dict(d_model=64, n_layers=2, n_heads=2, mlp_ratio=2.0),
    "tiny": dict(d_model=192, n_layers=4, n_heads=6, mlp_ratio=2.0),
    "small": dict(d_model=512, n_layers=8, n_heads=8, mlp_ratio=8 / 3),
    "base": dict(d_model=768, n_layers=12, n_heads=12, mlp_ratio=8 / 3),
}
