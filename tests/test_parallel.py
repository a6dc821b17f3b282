"""Episodes in worker processes give what one process gives: same trajectories, same order, errors raised."""
import pytest
import torch

from atommem.agent import AgentConfig, run_episodes as run_lockstep
from atommem.model_policy import ModelPolicy, SamplingConfig
from atommem.parallel import run_episodes, usable_workers
from atommem.tasks.registry import generate
from atommem.teacher import TeacherPolicy
from model.config import GPTConfig
from model.gpt import GPT
from rl.config import TrainConfig
from rl.data import teacher_trajectories, train_tokenizer, training_episodes

pytestmark = pytest.mark.usefixtures("reference_kernels")


def _episodes(n):
    families = ["qa1", "qa2", "qa3", "vt", "kv"]
    return [generate(families[i % 5], 150 + 40 * (i % 3), 500 + i) for i in range(n)]


def _key(traj):
    return [s.action.action_ids or s.action.text for s in traj.steps], traj.answers, traj.scores


def test_teacher_in_workers_equals_one_process_in_order_with_progress():
    eps = _episodes(9)
    done = []
    one = run_lockstep(eps, TeacherPolicy(), AgentConfig())
    three = run_episodes(eps, TeacherPolicy(), AgentConfig(), workers=3, progress=done.append)
    assert [t.episode for t in three] == eps                      # the parent's own episode objects, in order
    assert [_key(t) for t in three] == [_key(t) for t in one]
    assert sum(done) == len(eps)


def _policy(greedy, seed=0):
    cfg = TrainConfig.preset_named("smoke")
    tok = train_tokenizer(cfg, teacher_trajectories(cfg, training_episodes(cfg, 10, stream=3)))
    torch.manual_seed(0)
    model = GPT(GPTConfig.preset("smoke", vocab_size=tok.vocab_size, max_seq_len=cfg.max_seq_len)).eval()
    return ModelPolicy(model, tok, SamplingConfig(greedy=greedy, max_action_tokens=8, seed=seed))


def test_greedy_model_policy_in_workers_equals_one_process():
    policy, eps, agent = _policy(True), _episodes(4), AgentConfig(max_rereads=1)
    one = run_lockstep(eps, policy, agent)
    two = run_episodes(eps, policy, agent, workers=2)
    assert [_key(t) for t in two] == [_key(t) for t in one]
    assert all(len(s.action.logprobs) == len(s.action.action_ids) for t in two for s in t.steps)


def test_sampling_workers_draw_different_streams():
    """One episode four times: copies 0 and 1 are each the first of a worker's batch, so a stream shared by the
    workers would sample the same actions for both."""
    policy, agent = _policy(False, seed=3), AgentConfig(max_rereads=1)
    eps = _episodes(1) * 4
    first = run_episodes(eps, policy, agent, workers=2)
    assert [s.action.action_ids for s in first[0].steps] != [s.action.action_ids for s in first[1].steps]
    again = run_episodes(eps, policy, agent, workers=2)
    assert [_key(t) for t in again] == [_key(t) for t in first]     # each worker's stream is a function of the seed


class _Broken:
    def act(self, observations):
        raise ValueError("policy broke on purpose")


def test_a_worker_error_is_raised_with_its_traceback():
    with pytest.raises(RuntimeError, match="policy broke on purpose"):
        run_episodes(_episodes(4), _Broken(), AgentConfig(), workers=2)


def test_one_process_where_workers_cannot_help():
    class OnGpu:
        forkable = False
    assert usable_workers(OnGpu(), 100, 4) == 1
    assert usable_workers(TeacherPolicy(), 3, 4) == 1              # fewer than two episodes a worker
    assert usable_workers(TeacherPolicy(), 8, 4) == 4
    assert usable_workers(TeacherPolicy(), 8, 1) == 1


def test_training_workers_setting():
    from rl.data import episode_workers
    from atommem.parallel import default_workers
    assert episode_workers(TrainConfig(workers=3)) == 3
    assert episode_workers(TrainConfig(workers=0)) == default_workers() >= 1
    with pytest.raises(ValueError, match="workers"):
        episode_workers(TrainConfig(workers=-1))
