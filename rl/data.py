"""Training data: episodes for each stage, teacher trajectories, the tokenizer's corpus, and SFT rows.

Seeds: training episodes use seeds below `TrainConfig.eval_seed`, evaluation starts at it, so no evaluation episode
was ever seen in training. Rows are (observation ids, action ids): every step of a teacher episode is one row, the
loss falls on the action tokens only (the end token included). Copy drills (`copy_drill`) are rows of another kind:
the observation is a list of random upper-case codes and the action repeats it, a pure induction exercise.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

from atommem.agent import AgentConfig, Trajectory, run_episodes
from atommem.model_policy import SamplingConfig
from atommem.observation import END_TOKEN, special_tokens
from atommem.ops import OP_TAGS, Answer, Create, Delete, Read, Update
from atommem.parallel import resolve_workers
from atommem.tasks.registry import generate
from atommem.teacher import TeacherPolicy
from atommem.world_state import is_arrival_entry
from model.tokenizer import Tokenizer
from rl.config import TrainConfig


@dataclass
class Row:
    obs_ids: list[int]
    action_ids: list[int]

    def __len__(self) -> int:
        return len(self.obs_ids) + len(self.action_ids)


def agent_config(cfg: TrainConfig, questions_visible: bool = True) -> AgentConfig:
    return AgentConfig(workflow=cfg.workflow, chunk_tokens=cfg.chunk_tokens, top_k=cfg.top_k,
                       answer_top_k=cfg.answer_top_k, questions_visible=questions_visible, focus=cfg.focus,
                       answer_focus=cfg.answer_focus)


def decoding(cfg: TrainConfig, constrained: bool | None = None) -> SamplingConfig:
    """Greedy decoding of a learned policy, constrained as `cfg.constrained` says unless told otherwise."""
    return SamplingConfig(max_action_tokens=cfg.max_action_tokens,
                          constrained=cfg.constrained if constrained is None else constrained)


def episode_workers(cfg: TrainConfig) -> int:
    """Processes that share a batch of episodes (atommem/parallel.py): `workers`, 0 meaning one per core; one
    under torchrun, whose processes already share the cores."""
    from rl import distributed as dist
    workers = resolve_workers(cfg.workers)
    return 1 if dist.world() > 1 else workers


def training_seed(cfg: TrainConfig, stream: int, i: int) -> int:
    """Seed of the i-th training episode of a stream (SFT data 1, GRPO 90, ...); always below eval_seed, and
    above the few thousand small seeds a user may pick for `atommem-cli eval --seed`."""
    seed = (cfg.seed * 100 + stream) * 1_000_000 + i
    if not (stream < 100 and i < 1_000_000 and seed < cfg.eval_seed):
        raise ValueError(f"training seed {seed} would reach the evaluation range (eval_seed={cfg.eval_seed})")
    return seed


def haystack_of(cfg: TrainConfig):
    """The user's background text (cfg.haystack) or None for the generated filler."""
    if not cfg.haystack:
        return None
    from atommem.tasks.haystack import Haystack
    return Haystack.from_file(cfg.haystack)


def family_cycle(cfg: TrainConfig) -> list[str]:
    """The order in which training episodes take their families: each family as often as its weight."""
    weights = cfg.family_weights or (1,) * len(cfg.families)
    if len(weights) != len(cfg.families) or not all(isinstance(w, int) and w >= 1 for w in weights):
        raise ValueError(f"family_weights needs one whole number >= 1 per family ({', '.join(cfg.families)}), "
                         f"got {tuple(cfg.family_weights)!r}")
    return [f for f, w in zip(cfg.families, weights) for _ in range(w)]


# Fact counts of a dense episode (cfg.dense_frac): above every family's default at up to 512 tokens (6-11), up to
# the generators' cap at any length, so that chunks often hold two or three facts (as bAbI stories do). Not vt:
# its distractor chains would outgrow the answer phase's view (agent.py answer_top_k), and the teacher then fails.
DENSE_FACTS = (12, 20)
DENSE_FAMILIES = ("qa1", "qa2", "qa3", "kv")


def training_episodes(cfg: TrainConfig, n: int, stream: int) -> list:
    """n episodes, families in turn, lengths between half and all of train_tokens; `stream` separates uses.
    A share cfg.dense_frac of those of DENSE_FAMILIES packs DENSE_FACTS facts into the same length (the family's
    default otherwise).
    Questions of the user's bAbI files (cfg.babi_train) come on top, hidden in background at the same lengths."""
    rng = random.Random(cfg.seed * 7919 + stream)
    dense_rng = random.Random(cfg.seed * 7919 + stream + 104_729)  # its own draws: dense_frac 0 changes nothing
    hay = haystack_of(cfg)
    cycle = family_cycle(cfg)
    episodes = []
    for i in range(n):
        family = cycle[i % len(cycle)]
        length = rng.randint(cfg.train_tokens // 2, cfg.train_tokens)
        dense = cfg.dense_frac > 0 and dense_rng.random() < cfg.dense_frac and family in DENSE_FAMILIES
        n_facts = dense_rng.randint(*DENSE_FACTS) if dense else None
        episodes.append(generate(family, length, training_seed(cfg, stream, i), haystack=hay, n_facts=n_facts,
                                 n_questions=cfg.train_questions))
    if cfg.babi_train:
        from atommem.tasks.babi import read_babi
        for path in cfg.babi_train:
            episodes += read_babi(path, haystack=hay, target_tokens=cfg.train_tokens,
                                  seed=training_seed(cfg, stream + 50, 0))
    return episodes


def teacher_trajectories(cfg: TrainConfig, episodes: list) -> list[Trajectory]:
    """Teacher rollouts, a share of them with the questions hidden while reading. In this process: the teacher's
    steps cost about what sending them back from worker processes costs (2,000 episodes: 9-10 s either way)."""
    rng = random.Random(cfg.seed + 17)
    hidden = [rng.random() < cfg.hidden_question_frac for _ in episodes]
    trajs: list[Trajectory | None] = [None] * len(episodes)
    for visible in (True, False):
        idx = [i for i, h in enumerate(hidden) if h != visible]
        out = run_episodes([episodes[i] for i in idx], TeacherPolicy(), agent_config(cfg, visible))
        for i, t in zip(idx, out):
            trajs[i] = t
    return trajs


def tokenizer_corpus(trajectories: list[Trajectory]):
    """Contexts, questions and every step as the policy reads and writes it. Background dominates the merges, so
    most names and codes stay split into a few shared pieces. Measured here: with whole-word name tokens (a corpus
    weighted towards facts, a space after every tag) the policy copied names far more slowly (teacher-forced rows
    exactly right after SFT: 23% at step 4000, against 57% at step 2500 with this corpus)."""
    for traj in trajectories:
        yield traj.episode.context()
        for q in traj.episode.questions:
            yield f" {q.text} {q.answer}"
        for step in traj.steps:
            yield step.text + step.action.text + END_TOKEN


def train_tokenizer(cfg: TrainConfig, trajectories: list[Trajectory]) -> Tokenizer:
    return Tokenizer.train(tokenizer_corpus(trajectories), cfg.vocab_size, special_tokens(),
                           upper_pairs=cfg.upper_pairs)


def decision_token_ids(tok: Tokenizer) -> list[int]:
    """The action tokens that choose what to do (each operation's opening tag, and the end of the action)."""
    return [tok.token_id(f"<{name}>") for name in OP_TAGS] + [tok.token_id(END_TOKEN)]


def encode_observation(tok: Tokenizer, text: str, room: int) -> list[int]:
    """Same rule as the learned policy: an over-long observation keeps its last tokens."""
    ids = tok.encode(text)
    return ids[-room:] if len(ids) > room else ids


def step_row(cfg: TrainConfig, tok: Tokenizer, step) -> Row:
    """A teacher step as the policy would read and write it: the observation (its last tokens if too long) and the
    action, cut to max_action_tokens with the end token last."""
    action = tok.encode(step.action.text)[: cfg.max_action_tokens - 1] + [tok.token_id(END_TOKEN)]
    return Row(encode_observation(tok, step.text, cfg.max_seq_len - cfg.max_action_tokens), action)


def sft_rows(cfg: TrainConfig, tok: Tokenizer, trajectories: list[Trajectory], seed: int = 0) -> list[Row]:
    """One row per teacher step: "nothing to do" steps kept with probability skip_keep, steps that write to the
    store (create, update, delete: where the policy errs most) repeated write_repeat times, and steps that write
    and then read the next fact's key (a chunk with more facts: the rare continuation after a write, which the
    policy most often cuts short) chain_repeat times; answers that list three or more items (vt's chains, copied
    entry by entry from the shown memory) list_answer_repeat times; steps that create an arrival entry (a key of two
    words, `football kitchen`: a move by someone carrying an object) carry_repeat times."""
    rng = random.Random(seed)
    rows = []
    for traj in trajectories:
        if traj.reward < 0.5:  # as in the paper: imitate only episodes the teacher got (mostly) right
            continue
        for step in traj.steps:
            if not step.action.text and rng.random() >= cfg.skip_keep:
                continue
            row = step_row(cfg, tok, step)
            writes = any(isinstance(op, (Create, Update, Delete)) for op in step.ops)
            chains = writes and isinstance(step.ops[-1], Read)
            lists = any(isinstance(op, Answer) and len(op.text.split()) >= 3 for op in step.ops)
            carries = any(isinstance(op, Create) and is_arrival_entry(op.text) for op in step.ops)
            rows += [row] * max(cfg.write_repeat if writes else 1, cfg.chain_repeat if chains else 1,
                                cfg.list_answer_repeat if lists else 1, cfg.carry_repeat if carries else 1)
    return rows


def copy_drill_rows(cfg: TrainConfig, tok: Tokenizer, n: int, seed: int) -> list[Row]:
    """n rows whose action copies a line of the observation: 1-3 lines of 2-8 random five-letter upper-case codes
    (the form of vt's variables), one of them marked `copy:` and the others `skip:`; in a share `copy_drill_add` of
    the rows a last line `add: CODE` too. The action repeats the marked line, then the added code if any: a vt
    answer (the chain alone) and a vt update (the chain from the entry, then the new variable from the fact shown
    after it). Copying such lists is the skill this model forms last (bench/RESULTS.md, ninth round)."""
    rng = random.Random(seed)
    end = tok.token_id(END_TOKEN)

    def codes(k: int) -> str:
        return " ".join("".join(rng.choice(string.ascii_uppercase) for _ in range(5)) for _ in range(k))

    rows = []
    for _ in range(n):
        target = codes(rng.randint(2, 8))
        lines = [f"skip: {codes(rng.randint(2, 8))}" for _ in range(rng.randint(0, 2))]
        lines.insert(rng.randint(0, len(lines)), f"copy: {target}")
        if cfg.copy_drill_add > 0 and rng.random() < cfg.copy_drill_add:
            added = codes(1)
            lines.append(f"add: {added}")
            target = f"{target} {added}"
        action = tok.encode(f" {target}")[: cfg.max_action_tokens - 1] + [end]
        rows.append(Row(tok.encode("\n".join(lines) + "\n"), action))
    return rows
