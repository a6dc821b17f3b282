"""The episode loop: caps hold under adversarial policies, workflows forbid what they forbid, chunking, records."""
import random

import pytest

from atommem.agent import AgentConfig, EpisodeRun, answer_focus, focus_sentences, make_chunks, run_episodes
from atommem.observation import render
from atommem.ops import tagged
from atommem.policy import Action
from atommem.tasks.episode import count_tokens
from atommem.tasks.registry import generate
from atommem.teacher import TeacherPolicy


class Scripted:
    """Returns the same text (or a function of the observation) at every step."""
    name = "scripted"

    def __init__(self, fn):
        self.fn = fn

    def act(self, observations):
        return [Action(self.fn(o)) for o in observations]


def _bound(ep, cfg):
    n_chunks = len(make_chunks(ep.sentences, ep.is_fact, cfg.chunk_tokens))
    return n_chunks * (cfg.max_rereads + 1) + len(ep.questions) * (cfg.max_answer_reads + 1)


ADVERSARIES = {
    "random_text": lambda o: "".join(random.Random(len(o.chunk) + len(o.query)).choice("<>/readt1: x") for _ in range(60)),
    "only_reads": lambda o: "<read>Mary</read>",
    "only_deletes": lambda o: "<delete>1</delete>",
    "endless_answers": lambda o: "<answer>kitchen</answer>" * 5,
    "creates_forever": lambda o: "<create>x</create><read>x</read>" * 3,
    "nothing": lambda o: "",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIES))
def test_caps_hold_under_adversarial_policies(name):
    cfg = AgentConfig(max_rereads=3, max_answer_reads=2)
    eps = [generate("qa1", 512, 11), generate("kv", 300, 12)]
    trajs = run_episodes(eps, Scripted(ADVERSARIES[name]), cfg)
    for ep, t in zip(eps, trajs):
        assert len(t.steps) <= _bound(ep, cfg)
        assert len(t.answers) == len(ep.questions)
        assert 0.0 <= t.reward <= 1.0


def test_read_rereads_then_moves_on():
    ep = generate("qa1", 256, 3)
    cfg = AgentConfig(max_rereads=2)
    fresh = lambda o: f"<read>{o.query}x</read>" if o.phase == "read" else "<answer>a</answer>"  # noqa: E731
    t = run_episodes([ep], Scripted(fresh), cfg)[0]
    n_chunks = len(make_chunks(ep.sentences, ep.is_fact, cfg.chunk_tokens))
    assert sum(1 for s in t.steps if s.phase == "read") == n_chunks * 3


def test_reading_the_query_already_in_view_moves_on():
    ep = generate("qa1", 256, 3)
    cfg = AgentConfig(max_rereads=5, max_answer_reads=2)
    t = run_episodes([ep], Scripted(lambda o: "<create>x: y</create><read>x</read>"), cfg)[0]
    n_chunks = len(make_chunks(ep.sentences, ep.is_fact, cfg.chunk_tokens))
    # each chunk: a read of the new query "x" stays once, the same read again moves on; each question likewise
    assert sum(1 for s in t.steps if s.phase == "read") == n_chunks * 2
    assert sum(1 for s in t.steps if s.phase == "answer") == len(ep.questions) * 2
    assert t.answers == [""] * len(ep.questions)


@pytest.mark.parametrize("workflow,forbidden", [("memagent", "<create>a: b</create>"), ("no-update", "<update>1: a</update>"),
                                                ("no-delete", "<delete>1</delete>"), ("no-scratch", "<scratch>x</scratch>"),
                                                ("no-store", "<read>x</read>")])
def test_workflows_forbid_what_they_forbid(workflow, forbidden):
    ep = generate("kv", 256, 4)
    run = EpisodeRun(ep, AgentConfig(workflow=workflow))
    obs = run.observe()
    step = run.step(obs, Action(forbidden))
    assert step.ops == [] and any("not allowed" in e for e in step.errors)


def test_answer_only_workflows_skip_reading_and_show_retrieval():
    ep = generate("qa1", 512, 5)
    for wf in ("rag", "append", "full"):
        run = EpisodeRun(ep, AgentConfig(workflow=wf))
        obs = run.observe()
        assert obs.phase == "answer"
        assert obs.memory or obs.chunk, wf
        assert run.step(obs, Action("<create>x</create>")).errors


def test_rag_indexes_every_sentence_append_only_facts():
    ep = generate("qa1", 512, 6)
    assert len(EpisodeRun(ep, AgentConfig(workflow="rag")).engine) == len(ep.sentences)
    assert len(EpisodeRun(ep, AgentConfig(workflow="append")).engine) == sum(ep.is_fact)


def test_chunks_cover_the_context_in_order_and_respect_the_budget():
    ep = generate("qa2", 1024, 7)
    chunks = make_chunks(ep.sentences, ep.is_fact, 32)
    pieces = [s for c, _ in chunks for s in c]
    assert " ".join(pieces).split() == " ".join(ep.sentences).split()   # a longer sentence is cut, never changed
    assert len(pieces) >= len(ep.sentences)
    assert all(sum(count_tokens(s) for s in c) <= 32 or len(c) == 1 for c, _ in chunks)


def test_long_sentence_is_cut_at_word_boundaries():
    words = [f"w{i}" for i in range(100)]
    chunks = make_chunks([" ".join(words) + "."], [False], 16)
    assert " ".join(s for c, _ in chunks for s in c) == " ".join(words) + "."
    assert all(count_tokens(c[0]) <= 16 for c, _ in chunks)


def test_hidden_questions_are_not_shown_while_reading():
    ep = generate("qa1", 256, 8)
    run = EpisodeRun(ep, AgentConfig(questions_visible=False))
    assert run.observe().questions == []
    run2 = EpisodeRun(ep, AgentConfig(questions_visible=True))
    assert run2.observe().questions == [q.text for q in ep.questions]


def test_answers_are_scored_against_their_own_question():
    ep = generate("qa1", 512, 9, n_questions=2)
    gold = [q.answer for q in ep.questions]
    answers = iter(gold[::-1])
    t = run_episodes([ep], Scripted(lambda o: f"<answer>{next(answers)}</answer>" if o.phase == "answer" else ""),
                     AgentConfig())[0]
    assert t.scores == [float(a == b) for a, b in zip(gold[::-1], gold)]


def test_the_answer_phase_shows_answer_top_k_entries_and_reading_top_k():
    ep = generate("vt", 256, 5)
    value = ep.questions[0].text.split()[-1].rstrip("?")
    run = EpisodeRun(ep, AgentConfig(top_k=3, answer_top_k=5))
    for i in range(8):
        assert run.engine.create(f"V{i}: {value}") is None
    run.engine.read(value)
    assert [len(run.observe().memory), run.phase] == [3, "read"]
    run.phase = "answer"
    assert len(run.observe().memory) == 5
    run.config.answer_top_k = 2   # never fewer than the reading phase shows
    assert len(run.observe().memory) == 3


def test_focus_shows_the_chunk_sentences_that_match_the_query_best_first():
    chunk = ["Mary went to the kitchen.", "The sky was grey.", "John got the apple.", "Mary got the apple."]
    assert focus_sentences(chunk, "Mary apple", 3) == ["Mary got the apple.", "Mary went to the kitchen.",
                                                       "John got the apple."]
    assert focus_sentences(chunk, "Mary apple", 1) == ["Mary got the apple."]
    assert focus_sentences(chunk, "", 3) == []
    assert focus_sentences(chunk, "the", 3) == []          # stopwords match nothing
    assert focus_sentences(chunk, "Bill", 3) == []


def test_focus_follows_the_query_and_is_rendered_only_when_on():
    ep = generate("qa1", 256, 4)
    fact = next(s for s, f in zip(ep.sentences, ep.is_fact) if f)
    who = fact.split()[0]
    on, off = EpisodeRun(ep, AgentConfig(focus=True)), EpisodeRun(ep, AgentConfig(focus=False))
    while fact not in on.chunks[on.chunk_i][0]:
        for run in (on, off):
            run.step(run.observe(), Action(""))
    assert on.observe().focus == [] and "<focus></focus><act>" in render(on.observe())
    for run in (on, off):
        run.step(run.observe(), Action(f"<read> {who}</read>"))
    assert on.observe().focus[0] == fact
    assert render(on.observe()).endswith(f"<focus> {' '.join(on.observe().focus)}</focus><act>")
    assert off.observe().focus is None and "<focus>" not in render(off.observe())


def test_answer_focus_says_what_the_best_matching_entries_hold_about_the_query():
    vt = ["QXZAB: 48213", "MKSAS: 48213", "ZZTOP: 11111", "TZTBF: 48213"]
    assert answer_focus(vt, "48213", 6) == ["QXZAB", "MKSAS", "TZTBF"]        # view order, other values left out
    assert answer_focus(vt, "48213", 2) == ["QXZAB", "MKSAS"]
    assert answer_focus(["football: Mary | kitchen", "Mary: kitchen"], "football", 3) == ["Mary | kitchen"]
    qa3 = ["football: Mary | porch", "football kitchen: garden", "Mary: kitchen"]
    assert answer_focus(qa3, "football kitchen", 3) == ["garden"]             # only the entries that match most
    assert answer_focus(["K417: lamp"], "K417", 3) == ["lamp"]
    assert answer_focus(["K417: lamp"], "Q900", 3) == [] and answer_focus(["K417: lamp"], "", 3) == []
    assert answer_focus(["K417:"], "K417", 3) == []                         # nothing left to say


@pytest.mark.parametrize("family", ["qa1", "qa3", "vt", "kv"])
def test_answer_focus_is_shown_after_the_read_and_holds_the_teachers_answer(family):
    episodes = [generate(family, 512, 300 + i) for i in range(6)]
    on = run_episodes(episodes, TeacherPolicy(), AgentConfig(focus=True, answer_focus=True))
    off = run_episodes(episodes, TeacherPolicy(), AgentConfig(focus=True, answer_focus=False))
    for t_on, t_off in zip(on, off):
        assert t_on.answers == t_off.answers and t_on.reward == 1.0               # the teacher does not use it
        first, last = [s for s in t_on.steps if s.phase == "answer"]
        assert first.observation.focus == [] and first.ops[0].__class__.__name__ == "Read"
        said = " ".join(last.observation.focus)
        assert last.text.endswith(f"</ask>{tagged('focus', said)}<act>")             # right before the action
        answer = t_on.answers[0]
        assert answer == said if family == "vt" else answer in said.split() or answer == "nothing"
        assert all(s.observation.focus is None for s in t_off.steps if s.phase == "answer")
