"""KVCache: the keys and values of every layer for a batch of sequences of different lengths.

Owns two tensors k, v of shape (n_layers, B, H, S_max, D), the per-row lengths (B,): row b holds
valid entries at positions [0, lengths[b]), and each row's last token id (B,), which a model that embeds the
previous token needs at the next step, and, for a model with a short convolution over q, k and v
(`GPTConfig.qkv_conv`), each layer's projections of the last few positions (`conv_state`). Rows can leave the
batch (`keep`), which is how finished generations stop costing compute; a contiguous range of rows can be written
through a view (`rows`), which is how prompts of similar lengths are prefilled together; and the cache can `grow`,
so a generation allocates room for the tokens it actually writes. Knows nothing about the model's weights or about
sampling; the model writes into it (`GPT.prefill`, `GPT.decode_step`).
"""
from __future__ import annotations

import torch


class KVCache:
    def __init__(self, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor, conv_taps: int = 0):
        if k.shape != v.shape or k.dim() != 5:
            raise ValueError(f"k and v must share a (L, B, H, S, D) shape, got {tuple(k.shape)} and {tuple(v.shape)}")
        if lengths.shape != (k.shape[1],):
            raise ValueError(f"lengths must be ({k.shape[1]},), got {tuple(lengths.shape)}")
        self.k = k  # (L, B, H, S_max, D)
        self.v = v  # (L, B, H, S_max, D)
        self.lengths = lengths.to(device=k.device, dtype=torch.long)  # (B,)
        self.last_tokens = torch.zeros_like(self.lengths)  # (B,): id of the token at position lengths - 1
        L, B, H, _, D = k.shape
        # (L, B, taps, 3 H D): layer l's q, k, v projections of positions lengths - taps .. lengths - 1
        self.conv_state = k.new_zeros((L, B, conv_taps, 3 * H * D)) if conv_taps else None

    @classmethod
    def empty(cls, n_layers: int, batch_size: int, n_heads: int, max_len: int, head_dim: int,
              device=None, dtype=torch.float32, conv_taps: int = 0) -> "KVCache":
        """A zeroed cache with room for max_len positions per row and all lengths 0."""
        shape = (n_layers, batch_size, n_heads, max_len, head_dim)
        k = torch.zeros(shape, device=device, dtype=dtype)
        v = torch.zeros(shape, device=device, dtype=dtype)
        return cls(k, v, torch.zeros(batch_size, dtype=torch.long, device=device), conv_taps)

    @classmethod
    def for_model(cls, config, batch_size: int, max_len: int, device=None, dtype=torch.float32) -> "KVCache":
        """A cache sized for a GPTConfig (duck-typed: n_layers, n_heads, head_dim, max_seq_len)."""
        if max_len > config.max_seq_len:
            raise ValueError(f"cache length {max_len} exceeds max_seq_len={config.max_seq_len}")
        return cls.empty(config.n_layers, batch_size, config.n_heads, max_len, config.head_dim, device, dtype,
                         getattr(config, "qkv_conv", 0))

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    @property
    def dtype(self) -> torch.dtype:
        return self.k.dtype

    @property
    def device(self) -> torch.device:
        return self.k.device

    def layer(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Views of layer i: (B, H, S_max, D) each, contiguous."""
        return self.k[i], self.v[i]

    def rows(self, start: int, stop: int) -> "KVCache":
        """Rows [start, stop) as a cache sharing this one's storage: what a model writes into the view's k, v and
        conv state lands here. Lengths and last tokens are copies; write them back after a prefill (`set_rows`)."""
        view = KVCache.__new__(KVCache)
        view.k, view.v = self.k[:, start:stop], self.v[:, start:stop]  # (L, B', H, S_max, D); layer(i) stays contiguous
        view.lengths = self.lengths[start:stop].clone()
        view.last_tokens = self.last_tokens[start:stop].clone()
        view.conv_state = self.conv_state[:, start:stop] if self.conv_state is not None else None
        return view

    def set_rows(self, start: int, view: "KVCache") -> None:
        """Copy a row view's lengths and last tokens back into rows [start, start + view.batch_size)."""
        stop = start + view.batch_size
        self.lengths[start:stop] = view.lengths
        self.last_tokens[start:stop] = view.last_tokens

    def grow(self, max_len: int) -> None:
        """Make room for max_len positions per row (no-op if there already is); existing entries are kept."""
        extra = max_len - self.max_len
        if extra > 0:
            L, B, H, _, D = self.k.shape
            self.k = torch.cat([self.k, self.k.new_zeros(L, B, H, extra, D)], 3)  # (L, B, H, max_len, D)
            self.v = torch.cat([self.v, self.v.new_zeros(L, B, H, extra, D)], 3)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the given batch rows, in the given order (others leave the batch)."""
        rows = rows.to(device=self.k.device, dtype=torch.long)
        self.k = self.k.index_select(1, rows)  # (L, B', H, S_max, D)
        self.v = self.v.index_select(1, rows)  # (L, B', H, S_max, D)
        self.lengths = self.lengths.index_select(0, rows)  # (B',)
        self.last_tokens = self.last_tokens.index_select(0, rows)  # (B',)
        if self.conv_state is not None:
            self.conv_state = self.conv_state.index_select(1, rows)  # (L, B', taps, 3C)
