"""GPT: a decoder-only transformer with rotary positions, RMSNorm, SwiGLU/GELU MLP and tied embeddings.

Owns the weights and three ways to run them:
    forward(idx)                    full causal pass over (B, T) tokens -> logits (B, T, V); training
    prefill(idx, lengths, cache)    right-padded ragged prompts -> fills the cache, logits at each row's end
    decode_step(tokens, cache)      one new token per row at its own position -> logits (B, V)
Attention and RMSNorm go through `kernels` (Triton on GPU, PyTorch reference on CPU; ATOMMEM_KERNELS).
Knows nothing about tokenizers, sampling, memory operations or training.

Block (pre-norm):  x = x + W_o Attn(RoPE(W_q n(x)), RoPE(W_k n(x)), W_v n(x));  x = x + MLP(n(x))
                   with config.qkv_conv = c > 0, before RoPE: u_t = W_qkv n(x_t) becomes sum_i a_i * u_{t-i}, i = 0..c,
                   a_i learned per channel, a_0 = 1 and the rest 0 at init (u = 0 before position 0; the cache
                   keeps each row's last c u's)
Input:             x_t = E[tok_t] (+ P[tok_{t-1}] with config.prev_token; token 0 stands before position 0)
Output:            logits = n(x) E^T, with E the token embedding (tied).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from kernels import attention, decode_attention, rms_norm
from model.causal_conv import causal_conv, causal_conv_last
from model.config import GPTConfig
from model.kv_cache import KVCache
from model.rope import apply_rope, rope_table


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.kind = cfg.mlp
        n_in = 2 * cfg.mlp_hidden if cfg.mlp == "swiglu" else cfg.mlp_hidden
        self.up = nn.Linear(cfg.d_model, n_in, bias=False)  # swiglu: gate and value fused in one matmul
        self.down = nn.Linear(cfg.mlp_hidden, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.kind == "swiglu":
            gate, value = h.chunk(2, dim=-1)
            h = F.silu(gate) * value
        else:
            h = F.gelu(h, approximate="tanh")
        return self.down(h)


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.eps = cfg.n_heads, cfg.head_dim, cfg.norm_eps
        self.attn_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.mlp_norm = nn.Parameter(torch.ones(cfg.d_model))
        self.mlp = MLP(cfg)
        # taps[i] weighs position t - i's q, k, v (before RoPE) into position t's: the identity at init (taps[0]
        # ones, the rest zeros); vectors, so weight decay leaves them alone like the norms' weights
        self.taps = nn.ParameterList(nn.Parameter(torch.zeros(3 * cfg.d_model)) for _ in range(cfg.qkv_conv + 1)) \
            if cfg.qkv_conv else None

    def _mix(self, u: torch.Tensor) -> torch.Tensor:
        """The short causal convolution over time: u (B, T, 3C) -> (B, T, 3C); identity without taps."""
        if self.taps is None:
            return u
        return causal_conv(u, torch.stack(list(self.taps)))  # under autocast u is bf16: the taps follow it

    def _qkv(self, x: torch.Tensor, rot: torch.Tensor):
        """x (B, T, C) -> q, k, v each (B, H, T, D), with RoPE applied to q and k, and the projections u
        (B, T, 3C) before the convolution (what the cache keeps for the next positions)."""
        B, T, C = x.shape
        u = self.qkv(rms_norm(x, self.attn_norm, self.eps))  # (B, T, 3C)
        qkv = self._mix(u).view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (3, B, H, T, D)
        # split/unbind/squeeze instead of indexing: their backward concatenates instead of zero-filling
        qk, v = qkv.split((2, 1))  # (2, B, H, T, D), (1, B, H, T, D)
        q, k = apply_rope(qk, rot).unbind(0)  # (B, H, T, D) each
        return q, k, v.squeeze(0), u

    def _finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Residual adds: attention output y (..., C) then the MLP."""
        x = x + self.proj(y)
        return x + self.mlp(rms_norm(x, self.mlp_norm, self.eps))

    def forward(self, x: torch.Tensor, rot: torch.Tensor):
        """x (B, T, C), rot (T, D/2) -> (x', k, v, u); k, v (B, H, T, D) and the pre-convolution projections u
        (B, T, 3C) are returned for the cache (prefill)."""
        B, T, C = x.shape
        q, k, v, u = self._qkv(x, rot)
        y = attention(q, k, v, causal=True)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self._finish(x, y), k, v, u

    def decode(self, x: torch.Tensor, rot: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               pos: torch.Tensor, conv_state: torch.Tensor | None = None) -> torch.Tensor:
        """One token per row. x (B, C); rot (B, 1, D/2); caches (B, H, S_max, D); pos (B,); conv_state
        (B, qkv_conv, 3C): the projections of positions pos - qkv_conv .. pos - 1, shifted in place."""
        B, C = x.shape
        u = self.qkv(rms_norm(x, self.attn_norm, self.eps))  # (B, 3C)
        qkv = u
        if self.taps is not None:
            window = torch.cat([conv_state.to(u.dtype), u.unsqueeze(1)], 1)  # positions pos - c .. pos
            qkv = causal_conv_last(window, torch.stack(list(self.taps)))  # position pos only
            conv_state.copy_(window[:, 1:])
        qkv = qkv.view(B, 3, self.n_heads, self.head_dim).transpose(0, 1)  # (3, B, H, D)
        qk = apply_rope(qkv[:2], rot)  # (2, B, H, D)
        rows = torch.arange(B, device=x.device)
        k_cache[rows, :, pos] = qk[1].to(k_cache.dtype)  # writes (B, H, D) at each row's position
        v_cache[rows, :, pos] = qkv[2].to(v_cache.dtype)
        q = qk[0].to(k_cache.dtype).contiguous()  # (B, H, D)
        y = decode_attention(q, k_cache, v_cache, pos + 1).to(x.dtype)  # (B, H, D)
        return self._finish(x, y.reshape(B, C))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        # the previous token's embedding: a head can then match "the token before position s" against the
        # current token in one layer, which is what copying a span from the context needs
        self.wprev = nn.Embedding(config.vocab_size, config.d_model) if config.prev_token else None
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = nn.Parameter(torch.ones(config.d_model))
        # Rotations (max_seq_len, D/2) complex64, rebuilt per device. Not a buffer: Module.to(dtype) would
        # cast a complex buffer to a real dtype, and the table is not a weight (never saved).
        self._rot = rope_table(config.head_dim, config.max_seq_len, config.rope_theta)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal(0, init_std) everywhere; residual output projections scaled by 1/sqrt(2 n_layers); convolution
        taps the identity."""
        std = self.config.init_std
        out_std = std / math.sqrt(2 * self.config.n_layers)
        nn.init.normal_(self.wte.weight, std=std)
        if self.wprev is not None:
            nn.init.normal_(self.wprev.weight, std=std)
        nn.init.ones_(self.norm)
        for block in self.blocks:
            nn.init.normal_(block.qkv.weight, std=std)
            nn.init.normal_(block.mlp.up.weight, std=std)
            nn.init.normal_(block.proj.weight, std=out_std)
            nn.init.normal_(block.mlp.down.weight, std=out_std)
            nn.init.ones_(block.attn_norm)
            nn.init.ones_(block.mlp_norm)
            if block.taps is not None:
                for i, tap in enumerate(block.taps):
                    nn.init.constant_(tap, 1.0 if i == 0 else 0.0)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def device(self) -> torch.device:
        return self.wte.weight.device

    def rotations(self) -> torch.Tensor:
        """The RoPE table on the weights' device: (max_seq_len, D/2) complex64."""
        if self._rot.device != self.wte.weight.device:
            self._rot = self._rot.to(self.wte.weight.device)
        return self._rot

    def _check_len(self, T: int) -> None:
        if T > self.config.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len={self.config.max_seq_len}")

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Final norm and tied output projection: (..., C) -> (..., V)."""
        return F.linear(rms_norm(x, self.norm, self.config.norm_eps), self.wte.weight)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """Input vectors of whole sequences: (B, T) -> (B, T, C)."""
        x = self.wte(idx)
        if self.wprev is not None:
            x = x + self.wprev(F.pad(idx[:, :-1], (1, 0)))  # token 0 before position 0
        return x

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Last hidden states before the final norm: (B, T) -> (B, T, C)."""
        T = idx.shape[1]
        self._check_len(T)
        rot = self.rotations()[:T]  # (T, D/2)
        x = self.embed(idx)  # (B, T, C)
        for block in self.blocks:
            x, _, _, _ = block(x, rot)
        return x

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) long -> logits (B, T, V)."""
        return self.head(self.hidden(idx))

    def prefill(self, idx: torch.Tensor, lengths: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run right-padded prompts, store their K/V in the cache, return logits (B, V) at row ends.

        idx (B, T): row b is a prompt of lengths[b] tokens followed by any padding. Causal attention means
        padding never affects valid positions; the cache keeps lengths[b] valid entries per row (the padding's
        entries are overwritten by later decode steps before they can be read).
        """
        B, T = idx.shape
        self._check_len(T)
        lengths = lengths.to(device=idx.device, dtype=torch.long)
        if cache.batch_size != B or cache.max_len < T:
            raise ValueError(f"cache holds {cache.batch_size} rows x {cache.max_len} positions; prompts are {B} x {T}")
        if bool((lengths < 1).any()) or bool((lengths > T).any()):
            raise ValueError(f"prompt lengths must lie in [1, {T}], got {lengths.tolist()}")
        rot = self.rotations()[:T]  # (T, D/2)
        x = self.embed(idx)  # (B, T, C)
        rows = torch.arange(B, device=x.device)
        taps = self.config.qkv_conv
        if taps:  # each row's last `taps` positions, lengths - taps .. lengths - 1; before position 0: zeros
            back = lengths.unsqueeze(1) - taps + torch.arange(taps, device=idx.device)  # (B, taps)
            valid = (back >= 0).unsqueeze(-1)
        for i, block in enumerate(self.blocks):
            x, k, v, u = block(x, rot)
            k_cache, v_cache = cache.layer(i)
            k_cache[:, :, :T].copy_(k)  # (B, H, T, D)
            v_cache[:, :, :T].copy_(v)
            if taps:
                state = u[rows.unsqueeze(1), back.clamp(min=0)] * valid  # (B, taps, 3C)
                cache.conv_state[i].copy_(state)
        cache.lengths = lengths.clone()
        cache.last_tokens = idx[rows, lengths - 1].clone()  # (B,): what the next token's predecessor is
        last = x[rows, lengths - 1]  # (B, C)
        return self.head(last)

    def decode_step(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Append one token per row at position cache.lengths[b]; return next-token logits (B, V)."""
        B = tokens.shape[0]
        if cache.batch_size != B:
            raise ValueError(f"{B} tokens for a cache of {cache.batch_size} rows")
        pos = cache.lengths  # (B,)
        if B and int(pos.max()) >= cache.max_len:
            raise ValueError(f"KV cache is full ({cache.max_len} positions)")
        rot = self.rotations()[pos].unsqueeze(1)  # (B, 1, D/2)
        x = self.wte(tokens)  # (B, C)
        if self.wprev is not None:
            x = x + self.wprev(cache.last_tokens)
        for i, block in enumerate(self.blocks):
            k_cache, v_cache = cache.layer(i)
            state = cache.conv_state[i] if cache.conv_state is not None else None
            x = block.decode(x, rot, k_cache, v_cache, pos, state)
        cache.lengths = pos + 1
        cache.last_tokens = tokens.to(dtype=torch.long)
        return self.head(x)
