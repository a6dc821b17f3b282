"""The episode loop: read a long context chunk by chunk, manage memory with atomic operations, then answer.

One `EpisodeRun` is one episode's state machine; `run_episodes` advances many of them in lockstep, so each step's
observations reach the policy as one batch (the learned policy turns that into one ragged model batch) and finished
episodes drop out. Knows nothing about training: it records what a trainer needs (observation ids, sampled ids and
their log-probs) in plain dataclasses.

Rules (ARCHITECTURE.md section 2; where we depart from the paper, and why):
- The context is cut into chunks of at most `chunk_tokens` tokens (tokens as counted by tasks.count_tokens, so
  the loop is independent of any tokenizer), whole sentences where they fit.
- Reading phase. Operations apply left to right; those the workflow forbids become error lines. A step that issued
  a valid read of a new query re-observes the same chunk, with the new retrieval in view (at most `max_rereads`
  times per chunk); any other step moves on. Reading the query already in view again shows nothing new, so it
  holds neither the chunk nor, in the answer phase, the question (the teacher never does it; an RL policy that
  learned to end every write with a read would otherwise loop on the chunk up to the cap). The paper also
  re-observes after delete- or scratch-only steps; we do not, because only a read changes what the policy needs
  to see, and a step with no valid operation must never loop.
- The query is cleared when the loop moves to a new chunk or question, so every chunk starts from a clean view
  (departure: the paper keeps it; here the query also tells the policy which fact of the chunk it is handling).
- Focus (a switch, `focus`; departure): in the reading phase the observation also shows the chunk's sentences that
  share a word with the current query, best overlap first, at most `focus_k`. A read thus searches the chunk in view
  as well as the store, and the write that follows copies from a sentence next to the action instead of finding
  it among the chunk's other facts (where the small policy bound items to the wrong fact).
- Answer focus (a switch, `answer_focus`; departure): in the answer phase the focus shows what the entries in view
  say about the query: each shown entry that shares the most words with the query, without the query's words and the key's
  colon (`QXZAB: 48213` read by `48213` shows `QXZAB`; `Mary: kitchen` read by `Mary` shows `kitchen`). The answer
  is then a contiguous copy next to the action. Without it, vt's answer copies up to six names out of six entries
  eleven tokens apart, and the small policy lost its place in that list (a name written twice, the next skipped:
  three quarters of its vt errors, bench/RESULTS.md sixteenth round).
- Answer phase: one question per step; the policy may read (at most `max_answer_reads` times) and then answers; the
  first answer counts; a step with neither answers "". The view shows up to `answer_top_k` entries here (at least
  the reading phase's top-k): a question such as vt's gathers every entry that holds a value.
- Reward: mean score over the episode's questions (tasks/scoring.py `score_answer`: normalised exact match; vt's
  list of names as a set), each scored against its own answer only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from atommem.embed import content_words
from atommem.memory import MemoryConfig, MemoryEngine
from atommem.observation import Observation, render
from atommem.ops import Answer, Read, parse_ops
from atommem.policy import Action, Policy
from atommem.tasks.episode import Episode, count_tokens
from atommem.tasks.scoring import score_answer
from atommem.workflows import get_workflow

OP_KINDS = ("create", "read", "update", "delete", "scratch", "answer")


@dataclass
class AgentConfig:
    workflow: str = "atommem"
    chunk_tokens: int = 32
    top_k: int = 3
    capacity: int | None = None
    on_full: str = "evict"
    max_rereads: int = 8
    max_answer_reads: int = 2
    answer_top_k: int = 6               # entries shown in the answer phase (never fewer than the reading phase's)
    questions_visible: bool = True
    full_context_tokens: int = 320      # `full`: the window holds at most this much of the context
    focus: bool = False                 # show the chunk's sentences that match the query (reading phase)
    focus_k: int = 3
    answer_focus: bool = False          # show what the entries in view say about the query (answer phase)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Step:
    phase: str
    text: str                 # the rendered observation
    observation: Observation
    action: Action
    ops: list
    errors: list[str]
    advanced: bool


@dataclass
class Trajectory:
    episode: Episode
    steps: list[Step]
    answers: list[str]
    scores: list[float]
    stats: dict

    @property
    def reward(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else 0.0


def make_chunks(sentences: list[str], is_fact: list[bool], chunk_tokens: int) -> list[tuple[list, list]]:
    """Pack whole sentences into chunks of at most chunk_tokens; a longer sentence is cut at word boundaries."""
    chunks, cur, cur_fact, used = [], [], [], 0
    for text, fact in zip(sentences, is_fact):
        pieces = [text]
        if count_tokens(text) > chunk_tokens:
            words, pieces, piece = text.split(), [], []
            for w in words:
                if piece and count_tokens(" ".join(piece + [w])) > chunk_tokens:
                    pieces.append(" ".join(piece))
                    piece = []
                piece.append(w)
            pieces.append(" ".join(piece))
        for piece in pieces:
            n = count_tokens(piece)
            if cur and used + n > chunk_tokens:
                chunks.append((cur, cur_fact))
                cur, cur_fact, used = [], [], 0
            cur.append(piece)
            cur_fact.append(fact)
            used += n
    if cur:
        chunks.append((cur, cur_fact))
    return chunks


def focus_sentences(sentences: list[str], query: str, k: int) -> list[str]:
    """The sentences that share a content word with the query: most shared words first, then in order; at most k."""
    want = set(content_words(query))
    scored = [(-len(want & set(content_words(text))), i) for i, text in enumerate(sentences)]
    return [sentences[i] for score, i in sorted(scored) if score < 0][:k]


def answer_focus(entries: list[str], query: str, k: int) -> list[str]:
    """What the entries say about the query: those that share the most content words with it (in view order), each
    without the query's words, colons and edge bars; at most k, empty remainders left out."""
    want = set(content_words(query))
    said, top = [], None
    for text in focus_sentences(entries, query, k):
        shared = len(want & set(content_words(text)))
        if top is not None and shared < top:
            break
        top = shared
        kept = [w for w in text.replace(":", " ").split() if not want & set(content_words(w))]
        rest = " ".join(kept).strip(" |")
        if rest:
            said.append(rest)
    return said


def _kind(op) -> str:
    return type(op).__name__.lower()


def _tail(sentences: list[str], budget: int) -> list[str]:
    kept, used = [], 0
    for text in reversed(sentences):
        used += count_tokens(text)
        if used > budget:
            break
        kept.append(text)
    return kept[::-1]


class EpisodeRun:
    """One episode advancing step by step under a workflow."""

    def __init__(self, episode: Episode, config: AgentConfig, engine: MemoryEngine | None = None):
        """`engine`: continue on an existing memory (the chat keeps one across turns); default a fresh one."""
        self.episode, self.config = episode, config
        self.workflow = wf = get_workflow(config.workflow)
        if engine is None:
            engine = MemoryEngine(MemoryConfig(top_k=wf.top_k or config.top_k,
                                               capacity=wf.capacity or config.capacity, on_full=config.on_full))
        self.engine = engine
        self.chunks = make_chunks(episode.sentences, episode.is_fact, config.chunk_tokens)
        if wf.auto_store_facts or wf.index_all_sentences:
            for text, fact in zip(episode.sentences, episode.is_fact):
                if fact or wf.index_all_sentences:
                    self.engine.create(text)
        self.phase = "read" if wf.reading_steps and self.chunks else "answer"
        self.chunk_i = self.question_i = self.rereads = self.answer_reads = 0
        self.errors: list[str] = []
        self.steps: list[Step] = []
        self.answers: list[str] = []
        self.invalid = 0
        self._start_question()

    @property
    def done(self) -> bool:
        return self.phase == "answer" and self.question_i >= len(self.episode.questions)

    def _start_question(self) -> None:
        if self.phase == "answer" and not self.done and self.workflow.query_is_question:
            self.engine.read(self.episode.questions[self.question_i].text)

    def observe(self) -> Observation:
        wf, eng = self.workflow, self.engine
        k = None if self.phase == "read" else max(eng.config.top_k, self.config.answer_top_k)
        view = [entry.text for entry in eng.refresh_view(k)]
        if self.phase == "read":
            sentences, facts = self.chunks[self.chunk_i]
            show_q = self.config.questions_visible
            focus = focus_sentences(sentences, eng.query, self.config.focus_k) if self.config.focus else None
            return Observation("read", [q.text for q in self.episode.questions] if show_q else [], eng.scratch,
                               eng.query, view, self.errors, list(sentences), list(facts),
                               allowed=wf.read_ops, rewrite=wf.rewrite_each_chunk, focus=focus)
        chunk, chunk_fact = [], []
        if wf.show_context:
            chunk = _tail(self.episode.sentences, self.config.full_context_tokens)
            chunk_fact = self.episode.is_fact[len(self.episode.sentences) - len(chunk):]
        focus = answer_focus(view, eng.query, len(view)) if self.config.answer_focus else None
        return Observation("answer", [], eng.scratch, eng.query, view, self.errors, chunk, list(chunk_fact),
                           ask=self.episode.questions[self.question_i].text, allowed=wf.answer_ops, focus=focus)

    def step(self, obs: Observation, action: Action) -> Step:
        parsed = parse_ops(action.text)
        errors = list(parsed.errors)
        applied, did_read, answer = [], False, None
        for op in parsed.ops:
            kind = _kind(op)
            if not self.workflow.allowed(kind, self.phase):
                errors.append(f"{kind} is not allowed here")
                continue
            if isinstance(op, Answer):
                answer = op.text
                applied.append(op)
                break
            query = self.engine.query
            err = self.engine.apply(op)
            if err:
                errors.append(err)
                if not err.endswith("chars"):  # "text cut to N chars" is a warning: the op was applied
                    continue
            applied.append(op)
            did_read = did_read or (isinstance(op, Read) and self.engine.query != query)
        self.engine.end_step()
        self.invalid += len(errors)
        advanced = self._advance(did_read, answer)
        step = Step(obs.phase, render(obs), obs, action, applied, errors, advanced)
        self.steps.append(step)
        self.errors = errors
        return step

    def _advance(self, did_read: bool, answer: str | None) -> bool:
        if self.phase == "read":
            if did_read and self.rereads < self.config.max_rereads:
                self.rereads += 1
                return False
            self.chunk_i, self.rereads = self.chunk_i + 1, 0
            self.engine.clear_query()
            if self.chunk_i >= len(self.chunks):
                self.phase = "answer"
                self._start_question()
            return True
        if answer is None and did_read and self.answer_reads < self.config.max_answer_reads:
            self.answer_reads += 1
            return False
        self.answers.append(answer or "")
        self.question_i, self.answer_reads = self.question_i + 1, 0
        self.engine.clear_query()
        self._start_question()
        return True

    def trajectory(self) -> Trajectory:
        scores = [score_answer(a, q.answer, self.episode.family) for a, q in zip(self.answers, self.episode.questions)]
        counts = {k: 0 for k in OP_KINDS}
        for step in self.steps:
            for op in step.ops:
                counts[_kind(op)] += 1
        n = max(len(self.steps), 1)
        stats = {f"ops/{k}": v / n for k, v in counts.items()}
        stats.update(steps=len(self.steps), invalid_rate=self.invalid / n, store_size=len(self.engine),
                     reward=sum(scores) / max(len(scores), 1))
        return Trajectory(self.episode, self.steps, self.answers, scores, stats)


def run_episodes(episodes: list[Episode], policy: Policy, config: AgentConfig, progress=None) -> list[Trajectory]:
    """Run every episode to the end, all advancing in lockstep; `progress(n_done)` is called as episodes finish."""
    runs = [EpisodeRun(ep, config) for ep in episodes]
    active = [r for r in runs if not r.done]
    while active:
        observations = [r.observe() for r in active]
        actions = policy.act(observations)
        for run, obs, action in zip(active, observations, actions):
            run.step(obs, action)
        still = [r for r in active if not r.done]
        if progress is not None and len(still) != len(active):
            progress(len(active) - len(still))
        active = still
    return [r.trajectory() for r in runs]
