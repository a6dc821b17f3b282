"""The policy interface: a batch of observations in, one action per observation out.

Policies: `TeacherPolicy` (atommem/teacher.py), `ModelPolicy` (atommem/model_policy.py, a checkpoint behind this
interface), and any object with the same `act` method (random or adversarial policies in the tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from atommem.observation import Observation


@dataclass
class Action:
    text: str                                            # operations as text, without the end token
    obs_ids: list[int] = field(default_factory=list)     # the observation's token ids, as the model read them
    action_ids: list[int] = field(default_factory=list)  # sampled token ids, end token included
    logprobs: list[float] = field(default_factory=list)  # log-probability of each sampled token


class Policy(Protocol):
    name: str

    def act(self, observations: list[Observation]) -> list[Action]:
        ...
