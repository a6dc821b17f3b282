"""Memory workflows: the learned CRUD policy and the static baselines, as one switch each.

A workflow is a restriction of the same episode loop (atommem/agent.py): which operations the policy may emit in
each phase, and which the loop applies by itself. Nothing here knows about models or training.

| name        | reading phase (policy may emit)        | done by the loop                               |
|-------------|----------------------------------------|------------------------------------------------|
| atommem     | create read update delete scratch      | -                                              |
| memagent    | scratch, rewritten after every chunk   | -  (answers from question + scratchpad)        |
| append      | -                                      | every fact sentence stored; query = question   |
| rag         | -  (no reading steps)                  | all sentences indexed; query = question        |
| full        | -  (no reading steps)                  | whole context shown with the question          |
| no-update   | create read delete scratch             | -                                              |
| no-delete   | create read update scratch             | -                                              |
| no-scratch  | create read update delete              | -                                              |
| no-store    | scratch, rewritten when it chooses     | -                                              |
| k3/k6/k12   | as atommem, top-k of 3, 6 or 12        | -                                              |
| cap8        | as atommem, store capped at 8 entries  | oldest evicted                                 |
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

WRITE_OPS = ("create", "read", "update", "delete", "scratch")


@dataclass(frozen=True)
class Workflow:
    name: str
    read_ops: frozenset = frozenset(WRITE_OPS)      # ops the policy may emit while reading
    answer_ops: frozenset = frozenset({"read", "answer"})
    reading_steps: bool = True                      # False: skip straight to the answer phase
    auto_store_facts: bool = False                  # append: the loop stores each fact sentence
    index_all_sentences: bool = False               # rag: every sentence goes in the store, unread
    query_is_question: bool = False                 # the loop sets the query to the question
    show_context: bool = False                      # full: the whole context is the observation
    rewrite_each_chunk: bool = False                # memagent: the scratchpad is rewritten after every chunk
    top_k: int | None = None                        # overrides AgentConfig.top_k
    capacity: int | None = None                     # overrides the engine's capacity
    extra: dict = field(default_factory=dict)

    def allowed(self, op_kind: str, phase: str) -> bool:
        return op_kind in (self.read_ops if phase == "read" else self.answer_ops)


_ATOMMEM = Workflow("atommem")
_ANSWER_ONLY = frozenset({"answer"})

WORKFLOWS: dict[str, Workflow] = {
    "atommem": _ATOMMEM,
    "memagent": Workflow("memagent", read_ops=frozenset({"scratch"}), answer_ops=_ANSWER_ONLY,
                         rewrite_each_chunk=True),
    "append": Workflow("append", read_ops=frozenset(), answer_ops=_ANSWER_ONLY, reading_steps=False,
                       auto_store_facts=True, query_is_question=True),
    "rag": Workflow("rag", read_ops=frozenset(), answer_ops=_ANSWER_ONLY, reading_steps=False,
                    index_all_sentences=True, query_is_question=True),
    "full": Workflow("full", read_ops=frozenset(), answer_ops=_ANSWER_ONLY, reading_steps=False,
                     show_context=True),
    "no-update": replace(_ATOMMEM, name="no-update", read_ops=frozenset(WRITE_OPS) - {"update"}),
    "no-delete": replace(_ATOMMEM, name="no-delete", read_ops=frozenset(WRITE_OPS) - {"delete"}),
    "no-scratch": replace(_ATOMMEM, name="no-scratch", read_ops=frozenset(WRITE_OPS) - {"scratch"}),
    "no-store": Workflow("no-store", read_ops=frozenset({"scratch"}), answer_ops=_ANSWER_ONLY),
    "k3": replace(_ATOMMEM, name="k3", top_k=3),
    "k6": replace(_ATOMMEM, name="k6", top_k=6),
    "k12": replace(_ATOMMEM, name="k12", top_k=12),
    "cap8": replace(_ATOMMEM, name="cap8", capacity=8),
}


def get_workflow(name: str) -> Workflow:
    if name not in WORKFLOWS:
        raise ValueError(f"unknown workflow {name!r}; choose one of: {', '.join(WORKFLOWS)}")
    return WORKFLOWS[name]
