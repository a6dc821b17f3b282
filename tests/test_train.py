"""Training end to end on the smoke preset: loss falls, reward computed, checkpoints written, reloaded and resumed
exactly; a NaN stops the run and leaves the last checkpoint intact."""
import math
import re

import pytest
import torch

from atommem.model_policy import load_policy
from rl.config import TrainConfig
from rl.metrics import MetricsLogger, read_metrics
from rl.pipeline import build_model, train
from rl.sft import NonFiniteLoss, WeightAverage, run_sft
from rl.train_state import is_complete, latest_checkpoint

pytestmark = pytest.mark.usefixtures("reference_kernels")


@pytest.mark.slow
def test_smoke_pipeline_end_to_end(tmp_path):
    cfg = TrainConfig.preset_named("smoke")
    results = train(cfg, tmp_path / "run", progress=False)
    sft = read_metrics(tmp_path / "run" / "metrics.jsonl", stage="sft")
    losses = [m["loss"] for m in sft if "loss" in m]
    assert losses[-1] < losses[0], "the SFT loss must fall"
    rl = [m for m in read_metrics(tmp_path / "run" / "metrics.jsonl", stage="rl") if "reward" in m]
    assert len(rl) == cfg.rl_iters and all(0.0 <= m["reward"] <= 1.0 for m in rl)
    assert set(results) == {"teacher", "sft", "sft+grpo", "sft+grpo-free"}  # -free: without the constraint
    assert results["teacher"]["mean_accuracy"] > 0.9
    policy, agent = load_policy(tmp_path / "run" / "policy")
    assert agent["workflow"] == "atommem" and policy.model.config.vocab_size == cfg.vocab_size
    assert policy.sampling.constrained and cfg.constrained
    assert (tmp_path / "latest").is_symlink()
    text = (tmp_path / "run" / "results.md").read_text()
    assert text.count("|") > 10
    if results["sft"]["mean_accuracy"] < 1.0:     # the smoke policy fails most episodes: their first departures
        assert "episodes sft got wrong first departed" in text
        assert re.search(r"\| (qa1|kv) (256|512) \| (read|answer|-) \| ", text), text


class _CrashAt(MetricsLogger):
    """A logger that kills the run when asked to log step `at` or later."""

    def __init__(self, at, path):
        super().__init__(path)
        self.at = at

    def log(self, stage, step, **values):
        if step >= self.at:
            raise KeyboardInterrupt("killed")
        return super().log(stage, step, **values)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_equals_uninterrupted(tmp_path, smoke_data):
    cfg, tok, rows = smoke_data
    straight = build_model(cfg, tok.vocab_size)
    run_sft(cfg, straight, rows, tmp_path / "a", MetricsLogger(tmp_path / "a.jsonl"), progress=False)

    cfg_long = TrainConfig.preset_named("smoke", sft_steps=20, ckpt_every=10, eval_every=1000)
    interrupted = build_model(cfg_long, tok.vocab_size)
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg_long, interrupted, rows, tmp_path / "b", _CrashAt(20, tmp_path / "b.jsonl"), progress=False)
    assert latest_checkpoint(tmp_path / "b").name.endswith("10")
    resumed = build_model(cfg_long, tok.vocab_size)
    run_sft(cfg_long, resumed, rows, tmp_path / "b", MetricsLogger(tmp_path / "b.jsonl"), resume=True,
            progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must end where an uninterrupted one does"


def test_weight_average_follows_its_recurrence():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    first = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    avg = WeightAverage(model, 0.75)
    expected = dict(first)
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        avg.update(model)
        expected = {n: 0.75 * expected[n] + 0.25 * p.detach().double() for n, p in model.named_parameters()}
    for n, t in avg.tensors().items():
        assert torch.allclose(t.double(), expected[n.removeprefix("ema.")], atol=1e-6)
    avg.copy_to(model)
    assert all(torch.allclose(p.double(), expected[n], atol=1e-6) for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="no weight average"):
        WeightAverage(model, 0.5).load(dict(model.state_dict()))


def test_sft_ema_is_the_policy_and_resumes_exactly(tmp_path, smoke_data):
    _, tok, rows = smoke_data
    cfg = TrainConfig.preset_named("smoke", sft_steps=20, ckpt_every=10, eval_every=1000, sft_ema=0.8)
    straight = build_model(cfg, tok.vocab_size)
    run_sft(cfg, straight, rows, tmp_path / "a", MetricsLogger(tmp_path / "a.jsonl"), progress=False)
    from safetensors.torch import load_file
    saved = load_file(str(latest_checkpoint(tmp_path / "a") / "model.safetensors"))
    final = _weights(straight)
    assert all(torch.equal(final[k], saved["ema." + k]) for k, _ in straight.named_parameters())
    assert any(not torch.equal(final[k], saved[k]) for k, _ in straight.named_parameters()), \
        "the policy is the average, not the last step's weights"
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, build_model(cfg, tok.vocab_size), rows, tmp_path / "b", _CrashAt(15, tmp_path / "b.jsonl"),
                progress=False)
    resumed = build_model(cfg, tok.vocab_size)
    run_sft(cfg, resumed, rows, tmp_path / "b", MetricsLogger(tmp_path / "b.jsonl"), resume=True, progress=False)
    b = _weights(resumed)
    assert all(torch.equal(final[k], b[k]) for k in final), "a resumed run ends on the same average"


def test_nan_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, smoke_data):
    cfg, tok, rows = smoke_data
    cfg = TrainConfig.preset_named("smoke", sft_steps=10, ckpt_every=10, eval_every=1000)
    model = build_model(cfg, tok.vocab_size)
    run_sft(cfg, model, rows, tmp_path / "c", MetricsLogger(tmp_path / "c.jsonl"), progress=False)
    good = latest_checkpoint(tmp_path / "c")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    cfg2 = TrainConfig.preset_named("smoke", sft_steps=20, ckpt_every=1, eval_every=1000)
    with pytest.raises(NonFiniteLoss, match="intact"):
        run_sft(cfg2, model, rows, tmp_path / "c", MetricsLogger(tmp_path / "c.jsonl"), progress=False)
    assert latest_checkpoint(tmp_path / "c") == good and is_complete(good)


def test_config_of_a_run_saved_before_a_field_keeps_what_it_was_trained_with():
    cfg = TrainConfig.preset_named("smoke")
    assert cfg.qkv_conv == 5 and TrainConfig.from_dict({**cfg.to_dict(), "qkv_conv": 3}).qkv_conv == 3
    assert cfg.answer_focus and TrainConfig.from_dict(cfg.to_dict()).answer_focus
    older = cfg.to_dict()
    del older["qkv_conv"], older["answer_focus"]
    assert TrainConfig.from_dict(older).qkv_conv == 0 and not TrainConfig.from_dict(older).answer_focus


def test_train_command_rejects_missing_user_files(tmp_path):
    from click.testing import CliRunner

    from atommem.cli import main
    res = CliRunner().invoke(main, ["train", "--preset", "smoke", "--haystack", str(tmp_path / "nope.txt"),
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 2 and "no such file" in res.output


def test_parse_field_converts_to_the_field_type():
    assert TrainConfig.parse_field("rl_lr", "2e-4") == 2e-4
    assert TrainConfig.parse_field("group_size", "4") == 4
    assert isinstance(TrainConfig.parse_field("group_size", "4"), int)
    assert TrainConfig.parse_field("rl_fixed_tasks", "true") is True
    assert TrainConfig.parse_field("normalize_std", "0") is False
    assert TrainConfig.parse_field("families", "qa1, kv") == ("qa1", "kv")
    assert TrainConfig.parse_field("eval_multiples", "1,4") == (1, 4)
    assert TrainConfig.parse_field("haystack", "") is None
    for key, raw in (("nope", "1"), ("group_size", "2.5"), ("rl_fixed_tasks", "maybe"), ("rl_lr", "fast")):
        with pytest.raises(ValueError):
            TrainConfig.parse_field(key, raw)


def test_fixed_tasks_repeat_iteration_zero(monkeypatch):
    import rl.grpo as grpo
    seen = []
    monkeypatch.setattr(grpo, "run_episodes", lambda episodes, policy, config, workers=1: seen.append(
        [(e.family, e.seed) for e in episodes]) or [])
    for fixed in (False, True):
        seen.clear()
        cfg = TrainConfig.preset_named("smoke", rl_fixed_tasks=fixed)
        for it in range(3):
            grpo.rollout_batch(cfg, model=None, tok=_FakeTok(), it=it)
        assert (seen[0] == seen[1] == seen[2]) == fixed
        assert len(seen[0]) == cfg.rl_tasks * cfg.group_size


def test_rl_tokens_sets_the_grpo_tasks_length(monkeypatch):
    import rl.grpo as grpo
    from atommem.tasks.episode import count_tokens
    lengths = {}
    monkeypatch.setattr(grpo, "run_episodes", lambda episodes, policy, config, workers=1: lengths.setdefault(
        len(lengths), [sum(count_tokens(s) for s in e.sentences) for e in episodes]) and [])
    for rl_tokens in (0, 2048):
        cfg = TrainConfig.preset_named("smoke", rl_tokens=rl_tokens, rl_tasks=4)
        grpo.rollout_batch(cfg, model=None, tok=_FakeTok(), it=0)
    short, long = lengths[0], lengths[1]
    assert max(short) <= 1.1 * 256 and min(long) >= 0.9 * 1024 and max(long) <= 1.1 * 2048


def test_screening_keeps_the_candidate_the_greedy_policy_scores_lowest(monkeypatch):
    from types import SimpleNamespace as NS
    import rl.grpo as grpo
    calls = []

    def fake_run(episodes, policy, config, workers=1):
        calls.append((policy.sampling.greedy, [e.seed for e in episodes]))
        return [NS(reward=(e.seed % 7) / 7) for e in episodes]   # a score that differs between candidates

    monkeypatch.setattr(grpo, "run_episodes", fake_run)
    cfg = TrainConfig.preset_named("smoke", rl_tasks=3, rl_screen=4)
    _, groups = grpo.rollout_batch(cfg, model=None, tok=_FakeTok(), it=2)
    (screen_greedy, screened), (roll_greedy, rolled) = calls
    assert screen_greedy and not roll_greedy and len(screened) == 3 * 4 and groups == [0] * 4 + [1] * 4 + [2] * 4
    for t in range(3):
        cands = screened[4 * t:4 * t + 4]
        assert rolled[4 * t:4 * t + 4] == [min(cands, key=lambda s: s % 7)] * cfg.group_size
    calls.clear()
    grpo.rollout_batch(TrainConfig.preset_named("smoke", rl_tasks=3), model=None, tok=_FakeTok(), it=2)
    assert len(calls) == 1 and calls[0][1][::4] == screened[::4]   # without screening: each task's first candidate


def test_focus_draws_families_whose_groups_were_informative():
    from rl.grpo import _count_groups, task_families
    cfg = TrainConfig(rl_tasks=400, families=("qa1", "qa3"))
    assert task_families(cfg, 1) == ["qa1", "qa3"] * 200                       # in turn without rl_focus
    focus = TrainConfig(rl_tasks=400, families=("qa1", "qa3"), rl_focus=True)
    assert task_families(focus, 1, {}) == task_families(cfg, 1)                 # nothing seen yet: in turn
    drawn = task_families(focus, 1, {"qa1": [0, 30], "qa3": [30, 30]})         # weights 1/32 and 31/32
    assert 350 < drawn.count("qa3") < 400 and drawn == task_families(focus, 1, {"qa1": [0, 30], "qa3": [30, 30]})
    seen = {"qa1": [1, 2]}
    rewards = [1, 1, 0, 1, 0, 0]                                                # task 0 equal, 1 mixed, 2 equal
    _count_groups(seen, ["qa1", "qa3", "qa3"], rewards, [0, 0, 1, 1, 2, 2])
    assert seen == {"qa1": [1, 3], "qa3": [1, 2]}


class _FakeTok:
    def token_id(self, token):
        return 1


def test_grpo_rows_leave_out_skipped_groups_and_certain_steps():
    import math
    from types import SimpleNamespace as NS
    from rl.grpo import rows_from

    def step(*probs):
        return NS(action=NS(obs_ids=[1, 2], action_ids=list(range(len(probs))), logprobs=[math.log(p) for p in probs]))

    def traj(reward):  # one certain step (an empty action), one uncertain write
        return NS(reward=reward, steps=[step(0.999), step(0.999, 0.6, 0.99)])

    trajs = [traj(1.0), traj(0.0), traj(1.0), traj(1.0)]   # group 0 informative, group 1 all equal
    groups = [0, 0, 1, 1]
    rows, rewards, skipped, sure = rows_from(trajs, groups, TrainConfig(rl_sure_prob=0.0))
    assert (len(rows), skipped, sure) == (4, 1, 0) and rewards.tolist() == [1.0, 0.0, 1.0, 1.0]
    rows, _, skipped, sure = rows_from(trajs, groups, TrainConfig(rl_sure_prob=0.99))
    assert (len(rows), skipped, sure) == (2, 1, 2)
    assert [r.advantage for r in rows] == [0.5, -0.5] and all(len(r.action_ids) == 3 for r in rows)


def test_partial_reward_grades_list_answers_that_exact_match_fails_alike():
    from types import SimpleNamespace as NS
    from rl.grpo import episode_reward, rows_from
    q = NS(answer="QXZAB ABTRE CCCCC DDDDD EEEEE")
    step = NS(action=NS(obs_ids=[1], action_ids=[5], logprobs=[-0.5]))

    def traj(answer, family="vt"):   # one question; the agent's own exact-match reward is 0 for all below
        return NS(reward=0.0, answers=[answer], episode=NS(family=family, questions=[q]), steps=[step])

    trajs = [traj("QXZAB ABTRE CCCCC DDDDD EEEEX"), traj("QXZAB")]
    assert [episode_reward(t, "exact") for t in trajs] == [0.0, 0.0]
    assert episode_reward(trajs[0], "partial") == pytest.approx(0.8)
    assert episode_reward(trajs[1], "partial") == pytest.approx(2 / 6)
    assert episode_reward(traj("QXZAB ABTRE CCCCC DDDDD EEEEX", "kv"), "partial") == 0.0  # not a list family
    _, _, skipped, _ = rows_from(trajs, [0, 0], TrainConfig(rl_reward="exact"))
    rows, rewards, skipped_partial, _ = rows_from(trajs, [0, 0], TrainConfig(rl_reward="partial"))
    assert (skipped, skipped_partial) == (1, 0)
    assert [r.advantage for r in rows] == pytest.approx([0.8 - (0.8 + 1 / 3) / 2, 1 / 3 - (0.8 + 1 / 3) / 2])
    with pytest.raises(ValueError, match="rl_reward"):
        episode_reward(trajs[0], "f1")


def test_minibatches_are_sequential_steps_on_slices(smoke_data):
    """rl_minibatches=3 equals three one-step updates on the three slices, in order, with the same optimizer."""
    import copy
    from rl.batching import action_logprobs, collate
    from rl.grpo import RLRow, policy_update
    from rl.pipeline import build_model
    from rl.sft import make_optimizer
    cfg, tok, rows = smoke_data
    cfg = TrainConfig.preset_named("smoke", rl_lr=1e-2, rl_microbatch=4)
    model = build_model(cfg, tok.vocab_size)
    chosen = rows[:9]
    with torch.no_grad():
        idx, pos, targets, _ = collate(chosen)
        logp, _ = action_logprobs(model, idx, pos, targets)
    rl_rows = [RLRow(r.obs_ids, r.action_ids, (logp[i, : len(r.action_ids)] - 0.05).tolist(), (-1.0) ** i)
               for i, r in enumerate(chosen)]
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    opt_a, opt_b = make_optimizer(a, cfg.rl_lr, 0.0), make_optimizer(b, cfg.rl_lr, 0.0)
    policy_update(TrainConfig.preset_named("smoke", rl_lr=1e-2, rl_microbatch=4, rl_minibatches=3), a, None, opt_a,
                  rl_rows)
    for part in (rl_rows[0:3], rl_rows[3:6], rl_rows[6:9]):
        policy_update(cfg, b, None, opt_b, part)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    assert not torch.allclose(next(a.parameters()), next(model.parameters()))
    assert {int(s["step"]) for s in opt_a.state.values()} == {3}
    few = TrainConfig.preset_named("smoke", rl_microbatch=4, rl_minibatches=4)   # fewer rows than slices: empty
    stats = policy_update(few, a, None, make_optimizer(a, 1e-2, 0.0), rl_rows[:2])  # slices are no-op steps
    assert math.isfinite(stats["grad_norm"])


def test_model_shape_overrides_replace_the_preset():
    model = build_model(TrainConfig.preset_named("smoke", d_model=48, n_layers=3, n_heads=3), vocab_size=97)
    assert (model.config.d_model, model.config.n_layers, model.config.n_heads) == (48, 3, 3)
    plain = build_model(TrainConfig.preset_named("smoke"), vocab_size=97)
    assert (plain.config.d_model, plain.config.n_layers) == (64, 2)
    assert sum(1 for _ in model.parameters()) > sum(1 for _ in plain.parameters())


def test_sgd_steps_along_the_gradient_and_adam_steps_by_its_sign():
    from rl.sft import make_optimizer
    torch.manual_seed(0)
    grads = torch.randn(4, 3) * torch.tensor([1e-4, 1.0, 10.0])   # columns of very different scale
    for kind, expected in [("sgd", -0.5 * grads), ("adamw", -0.5 * grads.sign())]:
        w = torch.nn.Parameter(torch.randn(4, 3))
        before = w.detach().clone()
        opt = make_optimizer(torch.nn.ParameterList([w]), 0.5, 0.0, kind)
        w.grad = grads.clone()
        opt.step()
        torch.testing.assert_close(w.detach() - before, expected, rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer(torch.nn.Linear(2, 2), 0.1, 0.0, "lion")


def test_pool_keeps_the_tasks_the_greedy_policy_fails_and_cycles_them(monkeypatch):
    from types import SimpleNamespace as NS
    import rl.grpo as grpo
    calls = []

    def fake_run(episodes, policy, config, workers=1):
        calls.append((policy.sampling.greedy, config.questions_visible, [e.seed for e in episodes]))
        return [NS(reward=float(e.seed % 3 != 0)) for e in episodes]   # fails the seeds divisible by 3

    monkeypatch.setattr(grpo, "run_episodes", fake_run)
    cfg = TrainConfig.preset_named("smoke", rl_pool=30, rl_tasks=4)
    pool = grpo.screen_pool(cfg, model=None, tok=_FakeTok())
    assert [c[:2] for c in calls] == [(True, True), (True, False)] and sum(len(c[2]) for c in calls) == 30
    screened = calls[0][2] + calls[1][2]
    assert sorted(c[2] for c in pool) == sorted(s for s in screened if s % 3 == 0) and pool
    assert all(c[3] == (c[2] in calls[0][2]) for c in pool)            # each task keeps its visibility
    assert pool == grpo.screen_pool(cfg, model=None, tok=_FakeTok())   # deterministic
    calls.clear()
    seen = []
    for it in range(6):
        _, groups = grpo.rollout_batch(cfg, model=None, tok=_FakeTok(), it=it, pool=pool)
        greedy, visible, seeds = calls[-1]
        side = [c[2] for c in pool if c[3] == visible]
        assert not greedy and set(seeds) <= set(side) and groups == [t for t in range(4) for _ in range(4)]
        seen += seeds[:: cfg.group_size]
        families = [next(c[0] for c in pool if c[2] == s) for s in seeds[:: cfg.group_size]]
        if len({c[0] for c in pool if c[3] == visible}) == 2:
            assert families[0] != families[1] and families[::2] == families[:1] * 2   # families take turns
    assert set(seen) == {c[2] for c in pool}                           # six iterations of 4 cycle every task
    lopsided = [["qa1", 300, 3, True]] + [["kv", 300, s, True] for s in (6, 9, 12, 15, 18)]
    assert [c[2] for c in grpo.pool_tasks(cfg, lopsided, it=0)[0]] in ([3, 6, 3, 9], [6, 3, 9, 3])


def test_grpo_with_a_pool_resumes_where_it_stopped(tmp_path, smoke_data, monkeypatch):
    import rl.grpo as grpo
    from rl.grpo import run_grpo
    cfg, tok, _ = smoke_data
    used = {}                                        # iteration -> the pool its tasks came from
    real = grpo.rollout_batch

    def recording(cfg, model, tok, it, families=None, pool=None):
        used[it] = [list(c) for c in pool]
        return real(cfg, model, tok, it, families, pool)

    monkeypatch.setattr(grpo, "rollout_batch", recording)
    cfg = TrainConfig.preset_named("smoke", rl_pool=6, rl_iters=4)
    straight = run_grpo(cfg, build_model(cfg, tok.vocab_size), tok, tmp_path / "a",
                        MetricsLogger(tmp_path / "a.jsonl"), progress=False)
    pool_log = [m for m in read_metrics(tmp_path / "a.jsonl") if "pool_tasks" in m]
    assert len(pool_log) == 1 and 0 <= pool_log[0]["pool_tasks"] <= 6

    straight_pools = dict(used)
    used.clear()
    with pytest.raises(KeyboardInterrupt):
        run_grpo(cfg, build_model(cfg, tok.vocab_size), tok, tmp_path / "b", _CrashAt(3, tmp_path / "b.jsonl"),
                 progress=False)
    used.clear()
    resumed = run_grpo(cfg, build_model(cfg, tok.vocab_size), tok, tmp_path / "b",
                       MetricsLogger(tmp_path / "b.jsonl"), resume=True, progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), "a resumed GRPO run ends where a straight one does"
    assert straight_pools[0] and used and all(used[it] == straight_pools[it] for it in used)
    screens = [m for m in read_metrics(tmp_path / "b.jsonl") if "pool_tasks" in m]
    assert len(screens) == 1, "the resumed run takes its pool from the checkpoint, it does not screen again"


def test_write_penalty_prices_wrong_steps_in_every_group(monkeypatch):
    from types import SimpleNamespace as NS
    import rl.grpo as grpo

    def step(i):
        return NS(action=NS(obs_ids=[1], action_ids=[i], logprobs=[-0.5]))

    trajs = [NS(reward=r, steps=[step(0), step(1)], wrong=w)
             for r, w in ((1.0, [0, 0]), (0.0, [0, 1]), (1.0, [0, 2]), (1.0, [0, 0]))]
    monkeypatch.setattr(grpo, "wrong_writes", lambda t: t.wrong)
    rows, _, skipped, _ = grpo.rows_from(trajs, [0, 0, 1, 1], TrainConfig(rl_write_penalty=0.25))
    assert skipped == 1   # group 1 is all-equal: only its wrong step is a row, with the penalty alone
    assert [(r.action_ids[0], r.advantage) for r in rows] == [(0, 0.5), (1, 0.5), (0, -0.5), (1, -0.75), (1, -0.5)]
    rows, _, _, _ = grpo.rows_from(trajs, [0, 0, 1, 1], TrainConfig())
    assert [r.advantage for r in rows] == [0.5, 0.5, -0.5, -0.5]
