"""Many episodes in lockstep give exactly the trajectories they give one at a time (greedy learned policy)."""
import pytest
import torch

from atommem.agent import AgentConfig, run_episodes
from atommem.model_policy import ModelPolicy, SamplingConfig
from atommem.tasks.registry import generate
from model.config import GPTConfig
from model.gpt import GPT
from rl.config import TrainConfig
from rl.data import teacher_trajectories, train_tokenizer, training_episodes

pytestmark = pytest.mark.usefixtures("reference_kernels")


def test_batched_equals_one_at_a_time():
    cfg = TrainConfig.preset_named("smoke")
    tok = train_tokenizer(cfg, teacher_trajectories(cfg, training_episodes(cfg, 10, stream=3)))
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("smoke", vocab_size=tok.vocab_size, max_seq_len=cfg.max_seq_len)).eval()
    policy = ModelPolicy(model, tok, SamplingConfig(max_action_tokens=12))
    eps = [generate(f, 200, 40 + i) for i, f in enumerate(["qa1", "kv", "vt"])]
    agent = AgentConfig(max_rereads=2)
    together = run_episodes(eps, policy, agent)
    alone = [run_episodes([ep], policy, agent)[0] for ep in eps]
    for a, b in zip(together, alone):
        assert [s.action.action_ids for s in a.steps] == [s.action.action_ids for s in b.steps]
        assert a.answers == b.answers
        assert all(len(s.action.logprobs) == len(s.action.action_ids) for s in a.steps)
