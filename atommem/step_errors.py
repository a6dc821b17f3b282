"""Teacher-forced step errors: where a learned policy departs from the teacher, one decision at a time.

The teacher runs each episode; the policy then acts on every observation the teacher saw, and its action text is
compared with the teacher's. Mismatches are counted per task family and per kind of teacher step (the phase and its
first operation: `read:update`, `answer:answer`, `read:none` for a chunk where it does nothing), with examples.
Unlike end-to-end accuracy nothing compounds here: the table says which decision or which copy fails.
`first_divergences` takes the other view, on the policy's own runs: in each episode it got wrong, the teacher acts on
every observation the policy saw, and the first step where the two differ is classed (an action where the teacher
does nothing, nothing where the teacher acts, another operation, or the same operations with other text: a copy).
Also owns `wrong_writes`: in any trajectory (no teacher needed), the entries each step wrote that the facts read so
far contradict, the step-level signal a trainer may price. Knows nothing about training.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from atommem.agent import AgentConfig, Step, Trajectory, run_episodes
from atommem.ops import Create, Update, parse_ops
from atommem.teacher import TeacherPolicy, chunk_events
from atommem.world_state import apply_event, parse_entry


def wrong_writes(traj: Trajectory) -> list[int]:
    """Per step, how many of the entries it created or updated are wrong when the agent leaves the chunk: a
    malformed entry, a key no fact made, or a value that disagrees with the true state after every fact up to the
    end of that chunk. An entry written twice in a chunk is charged to its last writer only (a write that a later
    step of the chunk corrects is no error). The true state replays the facts in order (world_state.apply_event),
    so it needs the episode's fact marks, never the teacher."""
    state: dict[str, str] = {}        # the true state after the chunks already left
    out = [0] * len(traj.steps)
    last: dict[str, tuple[int, str]] = {}      # key -> (step, value) of its latest write in this chunk
    for t, step in enumerate(traj.steps):
        if step.phase != "read":
            continue
        for op in step.ops:
            if isinstance(op, (Create, Update)):
                entry = parse_entry(op.text)
                if entry is None:
                    out[t] += 1
                else:
                    last[entry[0]] = (t, entry[1])
        if step.advanced:
            for ev in chunk_events(step.observation):
                state = apply_event(state, ev)
            for key, (writer, value) in last.items():
                out[writer] += state.get(key) != value
            last = {}
    return out


def _example(teacher: str, policy: str, clip: int | None = None) -> str:
    """A (teacher action, policy action) pair as a table cell, each cut to `clip` characters if given."""
    def show(text: str) -> str:
        text = text if clip is None or len(text) <= clip else text[:clip] + " ..."
        return text or "(nothing)"
    return f"`{show(teacher)}` -> `{show(policy)}`"


def step_kind(step: Step) -> str:
    return f"{step.phase}:{type(step.ops[0]).__name__.lower() if step.ops else 'none'}"


@dataclass
class StepErrors:
    total: Counter = field(default_factory=Counter)      # (family, kind) -> teacher steps
    wrong: Counter = field(default_factory=Counter)      # (family, kind) -> steps where the policy differs
    examples: dict = field(default_factory=dict)         # (family, kind) -> [(teacher action, policy action)]

    def rate(self, family: str | None = None) -> float:
        keys = [k for k in self.total if family is None or k[0] == family]
        return sum(self.wrong[k] for k in keys) / max(sum(self.total[k] for k in keys), 1)

    def markdown(self) -> str:
        lines = ["| task | teacher step | steps | wrong | rate | example: teacher -> policy |", "|---" * 6 + "|"]
        for key in sorted(self.total):
            ex = self.examples.get(key, [])
            shown = _example(*ex[0]) if ex else ""
            lines.append(f"| {key[0]} | {key[1]} | {self.total[key]} | {self.wrong[key]} | "
                         f"{self.wrong[key] / self.total[key]:.3f} | {shown.replace('|', '/')} |")
        return "\n".join(lines)


def step_errors(policy, cells, config: AgentConfig, keep_examples: int = 3) -> StepErrors:
    """Compare `policy` with the teacher on every teacher step of the (family, length, episode) cells."""
    trajectories = run_episodes([c[2] for c in cells], TeacherPolicy(), config)
    steps = [(family, step) for (family, _, _), traj in zip(cells, trajectories) for step in traj.steps]
    actions = policy.act([step.observation for _, step in steps])
    report = StepErrors()
    for (family, step), action in zip(steps, actions):
        key = (family, step_kind(step))
        report.total[key] += 1
        if action.text.strip() != step.action.text.strip():
            report.wrong[key] += 1
            examples = report.examples.setdefault(key, [])
            if len(examples) < keep_examples:
                examples.append((step.action.text, action.text))
    return report


# how a policy's step departs from the teacher's action on the same observation
DIVERGENCE_KINDS = {
    "extra": "acts where the teacher does nothing",
    "missed": "does nothing where the teacher acts",
    "operation": "another sequence of operations",
    "copy": "the same operations, other text",
}


def divergence_kind(policy_text: str, teacher_text: str) -> str | None:
    """How `policy_text` differs from `teacher_text` (a key of DIVERGENCE_KINDS), or None if they agree."""
    if policy_text.strip() == teacher_text.strip():
        return None
    if not teacher_text.strip():
        return "extra"
    if not policy_text.strip():
        return "missed"
    kinds = [[type(op).__name__ for op in parse_ops(t).ops] for t in (policy_text, teacher_text)]
    return "copy" if kinds[0] == kinds[1] else "operation"


@dataclass
class Divergences:
    failed: Counter = field(default_factory=Counter)     # family -> episodes not fully right
    first: Counter = field(default_factory=Counter)      # (family, phase, kind) -> episodes; kind "none": the
                                                         # policy did what the teacher would at every step
    examples: dict = field(default_factory=dict)         # (family, phase, kind) -> [(teacher action, policy action)]

    def markdown(self) -> str:
        lines = ["| task | phase | first departure | episodes | share of the task's failures | "
                 "example: teacher -> policy |", "|---" * 6 + "|"]
        for key in sorted(self.first):
            ex = self.examples.get(key, [])
            shown = _example(*ex[0], clip=120) if ex else ""
            label = DIVERGENCE_KINDS.get(key[2], "none: the teacher would have done the same")
            lines.append(f"| {key[0]} | {key[1]} | {label} | {self.first[key]} | "
                         f"{self.first[key] / self.failed[key[0]]:.2f} | {shown.replace('|', '/')} |")
        return "\n".join(lines)


def first_divergences(trajectories, labels=None, keep_examples: int = 2) -> Divergences:
    """For each trajectory with reward below 1: the first of its steps where the teacher, given the same
    observation, would have acted otherwise. `labels` names each trajectory's row (default: its task family)."""
    teacher, report = TeacherPolicy(), Divergences()
    for i, traj in enumerate(trajectories):
        if traj.reward >= 1.0:
            continue
        family = labels[i] if labels is not None else traj.episode.family
        report.failed[family] += 1
        key = (family, "-", "none")
        for step in traj.steps:                       # step by step: the teacher stops at the first departure
            action = teacher.act([step.observation])[0]
            kind = divergence_kind(step.action.text, action.text)
            if kind is not None:
                key = (family, step.phase, kind)
                examples = report.examples.setdefault(key, [])
                if len(examples) < keep_examples:
                    examples.append((action.text, step.action.text))
                break
        report.first[key] += 1
    return report
