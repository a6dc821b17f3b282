"""Teacher-forced step errors: where a learned policy departs from the teacher, one decision at a time.

The teacher runs each episode; the policy then acts on every observation the teacher saw, and its action text is
compared with the teacher's. Mismatches are counted per task family and per kind of teacher step (the phase and its
first operation: `read:update`, `answer:answer`, `read:none` for a chunk where it does nothing), with examples.
Unlike end-to-end accuracy nothing compounds here: the table says which decision or which copy fails.
Knows nothing about training.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from atommem.agent import AgentConfig, Step, run_episodes
from atommem.teacher import TeacherPolicy


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
            shown = f"`{ex[0][0] or '(nothing)'}` -> `{ex[0][1] or '(nothing)'}`" if ex else ""
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
