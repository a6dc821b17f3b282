"""TrainConfig: every knob of `make train`, with named presets (`smoke` for tests, `tiny` for a 2-core CPU,
`small` for one GPU). Saved into every checkpoint; `atommem-cli train` options mirror its fields.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


_MISSING = object()


@dataclass
class TrainConfig:
    preset: str = "tiny"
    model_preset: str = "tiny"
    d_model: int = 0                   # 0: the model preset's width, layers and heads; else these replace them
    n_layers: int = 0
    n_heads: int = 0
    prev_token: bool = False           # the model also embeds each token's predecessor (model/config.py);
                                       # measured at 3,000 steps: the loss falls faster, accuracy the same;
                                       # at make train's 6,400: vt 0.0 at every quick evaluation
    qkv_conv: int = 5                  # q, k, v also mix in those of the 5 positions before (model/config.py),
                                       # so one head can match a whole 5-letter name at once; measured: the copy
                                       # of random codes forms before SFT step 1,000 (0 without it: letters copied
                                       # 2.5%); 5 against 3: vt creates wrong teacher-forced 2.0% against 3.4-4.4%,
                                       # make train 0.933 / 0.904 (seeds 0 / 1) against 0.904 / 0.889
                                       # (bench/RESULTS.md, twelfth and thirteenth rounds)
    vocab_size: int = 1536             # BPE vocabulary (upper_pairs adds 1,352 tokens on top)
    upper_pairs: bool = False          # upper-case letter pairs as tokens (model/tokenizer.py); measured with
                                       # make train: 0.829 -> 0.749, vt copies worse (bench/RESULTS.md, 8th round)
    max_seq_len: int = 448             # observation (at most max_seq_len - max_action_tokens) + action
    seed: int = 0
    families: tuple = ("qa1", "qa2", "qa3", "vt", "kv")
    family_weights: tuple[int, ...] = ()  # SFT episodes per family, relative, in the order of `families`
                                          # (e.g. 2,3,4,4,2); empty: equal shares
    train_tokens: int = 512            # context length of training episodes (1x)
    eval_multiples: tuple[int, ...] = (1, 4)  # final evaluation's lengths, x train_tokens; on 2 CPU cores 16x
                                       # would cost 168 s of each policy's 245: `make eval-long` adds it
    eval_n: int = 30                   # episodes per (family, length) in the final evaluation
    eval_seed: int = 1_000_000_000     # evaluation seeds start here; training seeds stay below
    # the agent (saved with the checkpoint: the policy is trained for these)
    chunk_tokens: int = 32
    top_k: int = 3
    answer_top_k: int = 6              # entries shown in the answer phase (vt gathers a value's 3-6 variables)
    workflow: str = "atommem"
    focus: bool = True                 # the observation shows the chunk's sentences matching the query (agent.py);
                                       # measured with train_questions 2: 0.731 -> 0.756 (bench/RESULTS.md)
    answer_focus: bool = True          # the answer phase shows what the entries in view say about the query
                                       # (agent.py), so vt's list of names is one contiguous copy
    train_questions: int = 2           # questions per training episode (each adds a read and an answer row)
    hidden_question_frac: float = 0.5  # share of training episodes whose questions stay hidden while reading
    dense_frac: float = 0.0            # share of SFT episodes (not vt) with 12-20 facts in the same length
                                       # (rl/data.py DENSE_FACTS): a chunk often holds several, as in bAbI stories;
                                       # measured at 0.25, seed 1: make train 0.920 -> 0.950 (qa2 and qa3 at 1x
                                       # better), bAbI-format stories 0.930 -> 0.873 (bench/RESULTS.md, 29th round)
    workers: int = 0                   # processes that share each batch of the model's episodes on a CPU (GRPO
                                       # rollouts, evaluations; atommem/parallel.py): 0 one per core, 1 none;
                                       # measured on 2 cores: the final evaluation 132-146 s -> 91 s, the same
                                       # answers; a rollout batch 26-34 s -> 21-22 s (RESULTS, thirtieth round)
    haystack: str | None = None        # background text file for training episodes (default: generated filler)
    babi_train: tuple = ()             # bAbI-format files whose questions join the SFT episodes
    # tokenizer
    tokenizer_episodes: int = 200
    # SFT
    sft_episodes: int = 8000
    sft_steps: int = 5000              # seed 0 (bench/RESULTS.md, eighteenth round): 4,000 -> 0.922 in 34 min,
                                       # 5,000 -> 0.958 in 43 min, 6,400 -> 0.960 (about 50 min)
    sft_batch: int = 32
    sft_lr: float = 3e-3
    sft_warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    obs_loss: float = 1.0              # weight of the dense next-token loss on observations (0: actions only);
                                       # measured at 3,000 steps (bench/RESULTS.md): 0.5 -> 0.456, 1.0 -> 0.509
                                       # (600 fresh episodes each); 2.0 -> 0.515 (200 episodes)
    obs_loss_stride: int = 3           # the observation loss scores every s-th position (the offset turns with the
                                       # step, so every position is scored once every s steps); measured: an SFT
                                       # step 6-7% faster than at 1; make train seed 0 0.913 -> 0.917 and 51.6
                                       # -> 49.2 min, seed 1 0.897 in 45.8 (bench/RESULTS.md, 31st round)
    decision_weight: float = 1.0       # weight of the action tokens that choose an operation (op tags, end);
                                       # measured: 3.0 hurts (0.155 against 0.475 at 3,000 steps, bench/RESULTS.md)
    skip_keep: float = 0.25            # share of "nothing to do" rows kept (they are many and easy)
    write_repeat: int = 1              # rows that create, update or delete appear this many times; measured:
                                       # 2 hurts (0.731 -> 0.598 at the make train budget, bench/RESULTS.md)
    chain_repeat: int = 3              # rows that write and then read the next fact's key (in a chunk with more
                                       # facts; about 8% of the writes) appear this many times; measured:
                                       # qa1-qa3 writes wrong teacher-forced (mostly that read left out)
                                       # 10-21% -> 5-13% (bench/RESULTS.md, eleventh round)
    carry_repeat: int = 1              # rows that create an arrival entry (`football kitchen: garden`, a move by
                                       # someone carrying an object) appear this many times; measured at 3: qa3
                                       # updates wrong teacher-forced 15% -> 7% (seed 0), but the 450-episode
                                       # table 0.944 -> 0.942 (seed 0) and 0.969 -> 0.924 (seed 1; bench/RESULTS.md,
                                       # twenty-third and twenty-fourth rounds): off
    list_answer_repeat: int = 1        # rows that answer with a list of 3 or more items (vt) appear this many times;
                                       # vt's answer errors are mostly a name copied twice and the next entry's
                                       # skipped (`MZKFY MZKFY` for `MZKFY MKSAS`); measured at 4, seeds 0 / 1:
                                       # SFT+GRPO 0.916 / 0.938, vt at 4x 0.63 / 0.83, within the default's
                                       # spread (bench/RESULTS.md, sixteenth round)
    copy_drill: float = 0.0            # > 0: add this share (of the task rows) of copy drills, rows whose action
                                       # repeats a list of random upper-case codes from the observation
                                       # (rl/data.py copy_drill_rows); measured at 0.1: vt answers right, vt
                                       # updates worse, 0.829 -> 0.784 (bench/RESULTS.md, ninth round); with
                                       # one-name vt creates, SFT+GRPO over seeds 0/1/2: 0.929/0.924/0.882,
                                       # vt at 4x 0.90/0.80/0.57: no better than without (fifteenth round)
    copy_drill_add: float = 0.0        # share of the drills that also append a code from a last `add:` line;
                                       # measured at 0.5: the copy never formed, vt 0.00 (RESULTS, ninth round)
    sft_ema: float = 0.999             # > 0: the SFT policy is the moving average of the weights with this decay
                                       # (rl/sft.py WeightAverage), not the last step's weights (0: those);
                                       # measured, each against the same run's last weights: seed 0 0.936 ->
                                       # 0.944, seed 1 0.971 -> 0.969, within noise (RESULTS, 22nd round)
    cpu_bf16: bool = False             # SFT forward in bf16 autocast on a CPU with native bf16 (fp32 weights)
    eval_every: int = 2000
    eval_during_n: int = 10
    ckpt_every: int = 1000
    # GRPO
    rl_iters: int = 12                 # fewer than before (20) so that make train stays within 40 minutes
    rl_tasks: int = 16                 # task instances per iteration, G rollouts each
    group_size: int = 8
    temperature: float = 1.0           # 1.5 measured: rollouts far worse, 0.838 against 0.853 (RESULTS, 8th round)
    rl_optimizer: str = "sgd"          # or "adamw" (rl/sft.py make_optimizer); from one SFT policy (0.853):
                                       # AdamW lr 1e-4 0.860, 5e-4 0.764; SGD lr 1.0 0.889, 3.0 0.893
    rl_lr: float = 1.0                 # SGD's step is lr * gradient (GRPO gradients have norm ~0.05);
                                       # with adamw use ~1e-4
    clip_low: float = 0.2
    clip_high: float = 0.28
    dual_clip: float = 3.0
    kl_coef: float = 0.0
    entropy_coef: float = 0.0
    normalize_std: bool = False
    ppo_epochs: int = 1
    rl_minibatches: int = 1            # optimizer steps per pass over an iteration's rows (disjoint slices);
                                       # 4 at lr 5e-4: invalid ops rose, reward flat (bench/RESULTS.md);
                                       # 2 with rl_max_rows 768 at lr 1e-4: 0.844 against 0.853
    rl_max_rows: int = 384             # rows per update (uniform sample of the batch's steps)
    rl_sure_prob: float = 0.0          # > 0: leave out steps whose every sampled token had at least this
                                       # probability (0.99 measured: 0.537 -> 0.542, as without it)
    rl_focus: bool = False             # draw task families by their share of informative groups so far;
                                       # measured: more informative groups, accuracy the same (0.713 vs 0.717;
                                       # with arrival entries 0.838 vs 0.853)
    rl_fixed_tasks: bool = False       # diagnostic: the same tasks every iteration (does the update learn at all?)
    rl_reward: str = "exact"          # "exact": the evaluation's score; "partial": a list answer (vt) earns the F1
                                       # of its names (atommem/tasks/scoring.py partial_score), so rollouts that
                                       # misspell one name of six and those that miss three differ
    rl_tokens: int = 0                 # GRPO tasks' context length (drawn between half and all of it);
                                       # 0: train_tokens; measured at 2048 from one SFT policy (0.936): 0.933
                                       # (bench/RESULTS.md, twenty-first round)
    rl_screen: int = 1                 # > 1: each GRPO task is the one of this many fresh candidates that the
                                       # greedy policy scores lowest (rl/grpo.py rollout_batch)
    rl_pool: int = 0                   # > 0: screen this many fresh training tasks with the greedy policy once,
                                       # at GRPO's start, and draw every iteration's tasks from those it fails
                                       # (rl/grpo.py screen_pool): a task the SFT policy solves gives an all-equal
                                       # group in 44 of 45 cases. Measured from one SFT policy (0.956): the pool's
                                       # reward rises (0.13 -> 0.38), fresh accuracy does not: 0.947-0.956
                                       # (bench/RESULTS.md, nineteenth round)
    rl_write_penalty: float = 0.0      # > 0: a step's advantage loses this per entry it leaves wrong when the
                                       # agent leaves the chunk (rl/grpo.py rows_from), in every group; measured
                                       # from one SFT policy (0.938): 0.5 at lr 1 0.936, 1 at lr 3 0.773
                                       # (bench/RESULTS.md, twentieth round)
    rl_answer_tasks: int = 0           # > 0: each iteration also runs this many fresh tasks greedily and answers
                                       # each question's final answer step group_size times (rl/answer_branch.py);
                                       # the informative groups' rows join the update beyond rl_max_rows;
                                       # measured at 48 from one SFT policy (0.936): 0.938, as without it
                                       # (1-6 informative groups of 44-48; bench/RESULTS.md, 21st round)
    rl_guide: bool = False             # the teacher's trajectory of each GRPO task joins its group where it
                                       # solves the task (rl/guide.py): a success in groups whose rollouts all
                                       # fail; measured from one SFT policy (0.944): lr 3 0.944, lr 10 0.873,
                                       # lr 3 with rl_sure_prob 0.9 0.922
                                       # (bench/RESULTS.md, twenty-fifth round)
    rl_credit: str = "episode"         # "episode": every step gets its episode's advantage (the paper);
                                       # "divergence": only the steps where a rollout first differs from a
                                       # sibling with another reward (rl/divergence.py); measured from one
                                       # SFT policy (0.944): 0.931 at lr 1, 0.940 at lr 0.3
                                       # (bench/RESULTS.md, twenty-sixth round)
    rl_microbatch: int = 64
    rl_constrained: bool = False       # GRPO's rollouts (and its greedy screening) decode constrained too;
                                       # from seed 0's SFT policy (0.930 constrained): 0.923, against 0.933
                                       # with free rollouts (more groups all-equal; RESULTS, 33rd round)
    max_action_tokens: int = 160       # a longer teacher action would be cut in SFT and at evaluation (longest 134)
    constrained: bool = True           # learned policies decode well-formed ops of observation words only
                                       # (atommem/action_constraint.py) in evaluations and as saved; GRPO
                                       # samples free. Measured on ten policies: +1.3 to +3.6 points at 1x/4x
                                       # (bench/RESULTS.md, thirty-third round)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        d = {**BEFORE_FIELD, **d}  # a run saved before a field existed keeps what it was trained with
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @classmethod
    def parse_field(cls, key: str, raw: str):
        """A command-line value for field `key`, converted to the field's type (ValueError with the reason)."""
        default = getattr(cls(), key, _MISSING)
        if default is _MISSING:
            names = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ValueError(f"no TrainConfig field {key!r}; fields: {names}")
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{key} takes true or false, not {raw!r}")
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, tuple):
            items = [x.strip() for x in raw.split(",") if x.strip()]
            if "int" not in str(next(f.type for f in dataclasses.fields(cls) if f.name == key)):
                return tuple(items)
            try:
                return tuple(int(x) for x in items)
            except ValueError:
                raise ValueError(f"{key} takes comma-separated whole numbers, not {raw!r}") from None
        if isinstance(default, (int, float)):
            try:
                return type(default)(raw)
            except ValueError:
                raise ValueError(f"{key} takes a{'n integer' if isinstance(default, int) else ' number'}, "
                                 f"not {raw!r}") from None
        return raw or None

    @classmethod
    def preset_named(cls, name: str, **overrides) -> "TrainConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], "preset": name, **overrides})


# Fields that change the model's shape, what it sees or how it is trained, with the value runs saved before the
# field existed were trained with (resuming such a run must rebuild the same model, observations and loss).
BEFORE_FIELD = {"qkv_conv": 0, "answer_focus": False, "sft_ema": 0.0, "obs_loss_stride": 1, "constrained": False}

PRESETS: dict[str, dict] = {
    "smoke": dict(model_preset="smoke", vocab_size=512, max_seq_len=320, families=("qa1", "kv"),
                  train_tokens=256, eval_multiples=(1, 2), eval_n=4, tokenizer_episodes=20, sft_episodes=40,
                  sft_steps=30, sft_batch=8, sft_warmup=5, eval_every=15, eval_during_n=2, ckpt_every=15,
                  rl_iters=2, rl_tasks=2, group_size=4, rl_max_rows=32, rl_microbatch=16, sft_ema=0.0),
    "tiny": dict(),
    # `make ablations`: one budget for every workflow, small enough that all ten fit in an afternoon on 2 cores
    "ablate": dict(sft_episodes=4000, sft_steps=3000, eval_every=1000, rl_iters=0, eval_multiples=(1, 4),
                   eval_n=20, obs_loss=0.5, prev_token=False, max_seq_len=320, max_action_tokens=48,
                   focus=False, answer_focus=False, train_questions=1, chain_repeat=1, qkv_conv=0, sft_ema=0.0,
                   obs_loss_stride=1, constrained=False),
                   # the recipe of the committed ablation table (bench/RESULTS.md; it predates the arrival entries)
    "small": dict(model_preset="small", vocab_size=2048, max_seq_len=512, sft_episodes=20000, sft_steps=20000,
                  sft_batch=64, sft_lr=1e-3, rl_iters=200, rl_tasks=32, eval_n=200,
                  rl_optimizer="adamw", rl_lr=1e-4,   # 200 iterations: Adam's scale settles; SGD unmeasured here
                  eval_multiples=(1, 4, 16)),         # cheap on a GPU
}
