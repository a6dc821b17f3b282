"""What the policy sees at one step, and how it is rendered as text.

An `Observation` is a plain record with both the rendered text (what a model reads) and the structured pieces (what a
scripted teacher reads: the chunk's sentences with their fact marks, the shown entries, the question). The model sees
exactly `render(obs)`:

    <question> Where is Mary?</question><scratch></scratch><query> Mary</query>
    <memory> [1] Mary: kitchen
    [2] football: Mary | garden</memory><errors></errors><chunk> ..</chunk><act>

In the answer phase `<ask>QUESTION</ask>` follows (after the chunk only in the `full` workflow, whose "chunk" is
the whole context). With the agent's `focus` on, `<focus> ..</focus>` comes last, right before `<act>`: the
chunk's sentences that share a word with the query (the read also searches the chunk in view), so the sentence a
write copies from sits next to the action; with `answer_focus`, in the answer phase, what the shown entries say
about the query, so the answer is copied from next to the action too. The policy answers with operations
(atommem/ops.py) and ends its action with `<end>`. Every tag is one special token of the tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from atommem.ops import OP_TAGS, tagged

OBS_TAGS = ("question", "query", "memory", "errors", "chunk", "ask", "focus")
ACT_TOKEN = "<act>"
END_TOKEN = "<end>"
PAD_TOKEN = "<pad>"


def special_tokens() -> list[str]:
    """Every tag the tokenizer must keep as a single token (pad first, so its id is 0)."""
    tags = [PAD_TOKEN, ACT_TOKEN, END_TOKEN]
    for name in (*OP_TAGS, *OBS_TAGS):
        for tag in (f"<{name}>", f"</{name}>"):
            if tag not in tags:
                tags.append(tag)
    return tags


@dataclass
class Observation:
    phase: str                              # "read" | "answer"
    questions: list[str]                    # shown questions (empty when hidden while reading)
    scratch: str
    query: str
    memory: list[str]                       # texts of the shown entries, position 1 first
    errors: list[str]
    chunk: list[str] = field(default_factory=list)       # sentences of the current chunk
    chunk_is_fact: list[bool] = field(default_factory=list)
    ask: str = ""                           # the question being answered (answer phase)
    allowed: frozenset = frozenset()        # ops the workflow lets the policy emit now
    rewrite: bool = False                   # the workflow rewrites the scratchpad after every chunk (memagent)
    focus: list[str] | None = None          # chunk sentences (answer phase: entry remainders) matching the query;
                                            # None: the agent shows no focus


def render(obs: Observation, entry_chars: int = 160, max_errors: int = 3) -> str:
    """The observation as the model reads it (entries and errors are clipped to bound its length)."""
    questions = " ".join(obs.questions)
    memory = "\n".join(f"[{i}] {text[:entry_chars]}" for i, text in enumerate(obs.memory, 1))
    errors = "; ".join(e[:80] for e in obs.errors[:max_errors])
    parts = [
        tagged("question", questions),
        tagged("scratch", obs.scratch),
        tagged("query", obs.query),
        tagged("memory", memory),
        tagged("errors", errors),
    ]
    if obs.chunk:
        parts.append(tagged("chunk", " ".join(obs.chunk)))
    if obs.phase == "answer":
        parts.append(tagged("ask", obs.ask))
    if obs.focus is not None:
        parts.append(tagged("focus", " ".join(obs.focus)))
    return "".join(parts) + ACT_TOKEN
