"""GPT, config, RoPE and KV cache: shapes, presets, cached decoding against the full forward, gradients.

Runs on the PyTorch kernel references (ATOMMEM_KERNELS=reference) so it stays fast under TRITON_INTERPRET=1;
one test runs the smoke model through the interpreted Triton kernels and compares.
"""
import pytest
import torch

from model.causal_conv import causal_conv, causal_conv_reference
from model.config import GPTConfig
from model.gpt import GPT
from model.kv_cache import KVCache
from model.rope import apply_rope, rope_table

from kernel_checks import INTERPRET

V = 97


@pytest.fixture(autouse=True)
def _reference_kernels(monkeypatch):
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")


def _model(seed=0, **overrides):
    torch.manual_seed(seed)
    model = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=64, **overrides))
    with torch.no_grad():
        for block in model.blocks:  # the convolution starts as the identity: give it weight so tests can fail
            for tap in block.taps or ():
                tap.normal_(0, 0.5)
    return model


SHAPES = [dict(), dict(prev_token=True), dict(qkv_conv=3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_shapes_and_param_count(shape):
    model = _model(**shape)
    prev_token = shape.get("prev_token", False)
    idx = torch.randint(0, V, (3, 17))
    logits = model(idx)
    assert logits.shape == (3, 17, V) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert model.num_params() == model.config.num_params()
    state = model.state_dict()
    assert "wte.weight" in state and not any("rope" in k for k in state)  # tied head, tables not saved
    assert ("wprev.weight" in state) == prev_token


def test_prev_token_embedding_sees_exactly_the_previous_token():
    """Changing token t changes position t+1's input through the previous-token embedding, and nothing else."""
    model = _model(prev_token=True)
    idx = torch.randint(1, V, (2, 9))
    other = idx.clone()
    other[:, 4] = (idx[:, 4] + 1) % V
    with torch.no_grad():
        diff = (model.embed(idx) - model.embed(other)).abs().sum(-1)  # (B, T)
        plain = _model(prev_token=False).embed(idx)
    assert (diff[:, [4, 5]] > 0).all() and (diff[:, [0, 1, 2, 3, 6, 7, 8]] == 0).all()
    torch.testing.assert_close(model.embed(idx)[:, 0], model.wte(idx[:, 0]) + model.wprev.weight[0])
    torch.testing.assert_close(plain, _model(prev_token=False).wte(idx))


def test_qkv_conv_sees_exactly_the_positions_before():
    """With qkv_conv = 2, changing token t changes the first layer's q, k, v at t, t+1 and t+2 only."""
    model = _model(qkv_conv=2)
    block = model.blocks[0]
    rot = model.rotations()[:10]
    idx = torch.randint(1, V, (2, 10))
    other = idx.clone()
    other[:, 4] = (idx[:, 4] + 1) % V
    with torch.no_grad():
        diff = sum((a - b).abs().sum((1, 3)) for a, b in zip(block._qkv(model.embed(idx), rot)[:3],
                                                               block._qkv(model.embed(other), rot)[:3]))
    assert (diff[:, [4, 5, 6]] > 0).all() and (diff[:, [0, 1, 2, 3, 7, 8, 9]] == 0).all()
    with pytest.raises(ValueError, match="qkv_conv"):
        GPTConfig(qkv_conv=-1)


@pytest.mark.parametrize("T,c", [(9, 3), (2, 3), (1, 5), (6, 0)])
def test_causal_conv_matches_its_reference_in_float64(T, c):
    """Forward and both gradients of the hand-written convolution against shifted slices under autograd, with a
    strided incoming gradient (as the heads' permute gives it) and windows shorter than the taps."""
    g = torch.Generator().manual_seed(T * 10 + c)
    u = torch.randn(3, T, 12, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(c + 1, 12, dtype=torch.float64, generator=g, requires_grad=True)
    grad = torch.randn(12, 3, T, dtype=torch.float64, generator=g).permute(1, 2, 0)  # strided
    out, ref = causal_conv(u, w), causal_conv_reference(u, w)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(out, (u, w), grad)
    want = torch.autograd.grad(ref, (u, w), grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert got[1].abs().sum() > 0


def test_qkv_conv_starts_as_the_plain_model():
    torch.manual_seed(3)
    plain = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=64))
    torch.manual_seed(3)
    conv = GPT(GPTConfig.preset("smoke", vocab_size=V, max_seq_len=64, qkv_conv=3))
    idx = torch.randint(0, V, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(conv(idx), plain(idx))
    assert conv.num_params() == plain.num_params() + 2 * 4 * 3 * 64


def test_presets():
    sizes = {name: GPTConfig.preset(name, vocab_size=1500) for name in ("smoke", "tiny", "small", "base")}
    assert (sizes["smoke"].d_model, sizes["smoke"].n_layers, sizes["smoke"].n_heads) == (64, 2, 2)
    assert (sizes["tiny"].d_model, sizes["tiny"].n_layers, sizes["tiny"].head_dim) == (192, 4, 32)
    assert 1.5e6 <= sizes["tiny"].num_params() <= 2.0e6
    assert (sizes["small"].d_model, sizes["small"].n_layers, sizes["small"].n_heads) == (512, 8, 8)
    assert (sizes["base"].d_model, sizes["base"].n_layers, sizes["base"].n_heads) == (768, 12, 12)
    assert all(c.max_seq_len == 512 for c in sizes.values())
    with pytest.raises(ValueError, match="unknown preset"):
        GPTConfig.preset("huge", vocab_size=10)


def test_config_dict_roundtrip_and_validation():
    cfg = GPTConfig.preset("tiny", vocab_size=321, mlp="gelu")
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict({**cfg.to_dict(), "dropout": 0.1})
    missing = cfg.to_dict()
    del missing["n_heads"]
    with pytest.raises(ValueError, match="missing GPTConfig fields"):
        GPTConfig.from_dict(missing)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=100, n_heads=3)
    with pytest.raises(ValueError, match="prev_token"):
        GPTConfig(prev_token="yes")
    older = cfg.to_dict()
    del older["prev_token"]  # a checkpoint written before the field existed builds the model it was
    assert GPTConfig.from_dict(older) == cfg
    with pytest.raises(ValueError, match="mlp"):
        GPTConfig(mlp="relu")


def test_gelu_variant_runs():
    model = _model(mlp="gelu")
    assert model(torch.randint(0, V, (2, 5))).shape == (2, 5, V)


def test_too_long_raises():
    model = _model()
    with pytest.raises(ValueError, match="max_seq_len"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_causal():
    model = _model()
    idx = torch.randint(0, V, (2, 12))
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % V
    torch.testing.assert_close(model(idx)[:, :8], model(changed)[:, :8])


def test_gradients_reach_every_parameter():
    model = _model()
    idx = torch.randint(0, V, (2, 10))
    loss = torch.nn.functional.cross_entropy(model(idx)[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_rope_is_relative():
    rot = rope_table(8, 32, 10000.0)
    q, k = torch.randn(8), torch.randn(8)

    def dot(p, s):
        return (apply_rope(q, rot[p]) * apply_rope(k, rot[s])).sum()

    torch.testing.assert_close(dot(5, 2), dot(13, 10))
    torch.testing.assert_close(apply_rope(q, rot[0]), q)  # position 0 is the identity
    torch.testing.assert_close(apply_rope(q, rot[3]).norm(), q.norm())  # a rotation
    x = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: apply_rope(t.float(), rot[:5]).double(), (x,), eps=1e-3, atol=1e-3)


@pytest.mark.parametrize("shape", SHAPES)
def test_prefill_and_decode_match_full_forward(shape):
    model = _model(**shape)
    B, T = 4, 20
    idx = torch.randint(0, V, (B, T))
    full = model(idx)  # (B, T, V)
    lengths = torch.tensor([3, 11, 7, 1])
    padded = idx[:, : int(lengths.max())].clone()
    padded[torch.arange(padded.shape[1])[None, :] >= lengths[:, None]] = 0  # right padding
    cache = KVCache.for_model(model.config, B, T)
    rows = torch.arange(B)
    with torch.inference_mode():
        logits = model.prefill(padded, lengths, cache)
        torch.testing.assert_close(logits, full[rows, lengths - 1], atol=1e-5, rtol=1e-5)
        for _ in range(T - int(lengths.max())):
            pos = cache.lengths.clone()
            logits = model.decode_step(idx[rows, pos], cache)
            torch.testing.assert_close(logits, full[rows, pos], atol=1e-5, rtol=1e-5)
    assert torch.equal(cache.lengths, lengths + T - int(lengths.max()))


@pytest.mark.parametrize("shape", SHAPES)
def test_decode_after_dropping_rows(shape):
    model = _model(**shape)
    B, T = 3, 12
    idx = torch.randint(0, V, (B, T))
    full = model(idx)
    lengths = torch.tensor([4, 6, 5])
    cache = KVCache.for_model(model.config, B, T)
    with torch.inference_mode():
        model.prefill(idx[:, :6], lengths, cache)
        cache.keep(torch.tensor([2, 0]))  # row 1 leaves, rows 2 and 0 swap order
        assert cache.k.shape[1] == 2 and cache.lengths.tolist() == [5, 4]
        logits = model.decode_step(idx[[2, 0], [5, 4]], cache)
    torch.testing.assert_close(logits, full[[2, 0], [5, 4]], atol=1e-5, rtol=1e-5)


def test_decode_refuses_full_cache():
    model = _model()
    cache = KVCache.for_model(model.config, 1, 4)
    with torch.inference_mode():
        model.prefill(torch.zeros(1, 4, dtype=torch.long), torch.tensor([4]), cache)
        with pytest.raises(ValueError, match="full"):
            model.decode_step(torch.zeros(1, dtype=torch.long), cache)


@pytest.mark.skipif(not INTERPRET, reason="Triton on CPU tensors needs TRITON_INTERPRET=1 at import")
def test_interpreted_triton_kernels_match_reference(monkeypatch):
    pytest.importorskip("triton")
    model = _model()
    idx = torch.randint(0, V, (1, 16))
    lengths = torch.tensor([16])
    with torch.inference_mode():
        ref = model(idx)
        cache = KVCache.for_model(model.config, 1, 17)
        model.prefill(idx, lengths, cache)
        ref_step = model.decode_step(idx[:, 0], cache)
        monkeypatch.setenv("ATOMMEM_KERNELS", "triton")
        out = model(idx)
        cache = KVCache.for_model(model.config, 1, 17)
        model.prefill(idx, lengths, cache)
        out_step = model.decode_step(idx[:, 0], cache)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out_step, ref_step, atol=1e-4, rtol=1e-4)

    def grads():
        model.zero_grad()
        model(idx).logsumexp(-1).mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    tri = grads()
    monkeypatch.setenv("ATOMMEM_KERNELS", "reference")
    ref_grads = grads()
    for name in ref_grads:
        torch.testing.assert_close(tri[name], ref_grads[name], atol=1e-4, rtol=1e-3, msg=name)
