"""The SFT data: training episodes (families, weights, users' files), teacher rows and how often each repeats,
and the copy drills (rl/data.py)."""
import dataclasses

import pytest

from rl.config import TrainConfig
from rl.data import DENSE_FAMILIES, copy_drill_rows, sft_rows, teacher_trajectories, train_tokenizer, training_episodes


def test_default_action_cap_holds_the_teachers_longest_actions(smoke_data):
    """A capped action is cut mid-operation both in the SFT rows and when the policy writes it."""
    from atommem.agent import run_episodes
    from atommem.tasks.registry import generate
    from atommem.teacher import TeacherPolicy
    from rl.data import agent_config
    _, tok, _ = smoke_data
    cfg = TrainConfig()
    episodes = [generate(family, 4 * cfg.train_tokens, cfg.eval_seed + i)
                for family in ("qa2", "qa3", "vt") for i in range(8)]
    trajs = run_episodes(episodes, TeacherPolicy(), agent_config(cfg))
    longest = max(len(tok.encode(s.action.text)) + 1 for t in trajs for s in t.steps)  # + the end token
    assert 48 < longest <= cfg.max_action_tokens


def test_user_babi_files_and_background_join_the_training_data(tmp_path):
    from rl.data import training_episodes
    babi = tmp_path / "qa1.txt"
    babi.write_text("1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary?\tbathroom\t1\n")
    book = tmp_path / "book.txt"
    book.write_text("The lighthouse keeper counted the gulls every dawn. " * 50)
    cfg = TrainConfig.preset_named("smoke", haystack=str(book), babi_train=(str(babi),))
    eps = training_episodes(cfg, 4, stream=1)
    assert [e.family for e in eps[-1:]] == ["babi"] and eps[-1].questions[0].answer == "bathroom"
    background = [s for e in eps for s, fact in zip(e.sentences, e.is_fact) if not fact]
    assert background and all("lighthouse" in s for s in background)
    cfg2 = TrainConfig.from_dict(cfg.to_dict())
    assert cfg2.babi_train == cfg.babi_train and cfg2.haystack == cfg.haystack


def test_write_rows_repeat_and_the_rest_stay_once():
    cfg = TrainConfig.preset_named("smoke", chain_repeat=1)
    trajs = teacher_trajectories(cfg, training_episodes(cfg, 6, stream=1))
    tok = train_tokenizer(cfg, trajs)
    once = sft_rows(cfg, tok, trajs)
    twice = sft_rows(TrainConfig.preset_named("smoke", write_repeat=2, chain_repeat=1), tok, trajs)
    tags = {tok.token_id(t) for t in ("<create>", "<update>", "<delete>")}
    writes = [r for r in once if tags & set(r.action_ids)]
    assert writes and len(twice) == len(once) + len(writes)
    key = lambda r: (tuple(r.obs_ids), tuple(r.action_ids))  # noqa: E731
    assert sorted(map(key, twice)) == sorted(map(key, once + writes))


def _repeated_rows(cfg, field, selected):
    """SFT rows with `field`=1 and =3: the rows `selected(tok, row)` picks must appear three times, the rest once.
    Returns (tok, rows once, the selected rows) for the caller's own checks."""
    cfg = dataclasses.replace(cfg, **{field: 1})
    trajs = teacher_trajectories(cfg, training_episodes(cfg, 16, stream=1))
    tok = train_tokenizer(cfg, trajs)
    once = sft_rows(cfg, tok, trajs)
    thrice = sft_rows(dataclasses.replace(cfg, **{field: 3}), tok, trajs)
    picked = [r for r in once if selected(tok, r)]
    assert picked and len(thrice) == len(once) + 2 * len(picked)
    key = lambda r: (tuple(r.obs_ids), tuple(r.action_ids))  # noqa: E731
    assert sorted(map(key, thrice)) == sorted(map(key, once + picked + picked))
    return tok, once, picked


def test_rows_that_write_then_read_the_next_key_repeat_chain_repeat_times():
    def chain(tok, row):
        writes = {tok.token_id(t) for t in ("<create>", "<update>", "<delete>")}
        return bool(writes & set(row.action_ids)) and row.action_ids[-2:] == [tok.token_id("</read>"),
                                                                              tok.token_id("<end>")]
    _, once, chains = _repeated_rows(TrainConfig.preset_named("smoke"), "chain_repeat", chain)
    assert len(chains) < len(once) // 4      # a minority: a write, then the next fact's read


def _answer_items(tok, row):
    """How many items the row's answer lists (0: not an answer)."""
    ids, opening = row.action_ids, tok.token_id("<answer>")
    if opening not in ids:
        return 0
    return len(tok.decode(ids[ids.index(opening) + 1:ids.index(tok.token_id("</answer>"))]).split())


def test_answers_that_list_three_or_more_items_repeat_list_answer_repeat_times():
    cfg = TrainConfig.preset_named("smoke", families=("vt", "qa1"), chain_repeat=1)
    tok, once, _ = _repeated_rows(cfg, "list_answer_repeat", lambda tok, r: _answer_items(tok, r) >= 3)
    assert any(0 < _answer_items(tok, r) < 3 for r in once)  # qa1's one-word answers stay once


def _created_keys(tok, row):
    """The keys, as word lists, of the entries the row's action creates."""
    ids, opening, closing = row.action_ids, tok.token_id("<create>"), tok.token_id("</create>")
    return [tok.decode(ids[i + 1:ids.index(closing, i)]).partition(":")[0].split()
            for i, t in enumerate(ids) if t == opening]


def test_rows_that_create_an_arrival_entry_repeat_carry_repeat_times():
    cfg = TrainConfig.preset_named("smoke", families=("qa3", "kv"), chain_repeat=1)
    tok, once, _ = _repeated_rows(cfg, "carry_repeat", lambda tok, r: any(len(k) == 2 for k in _created_keys(tok, r)))
    assert any(_created_keys(tok, r) and all(len(k) == 1 for k in _created_keys(tok, r)) for r in once)


@pytest.mark.parametrize("add", [0.0, 0.5])
def test_copy_drills_repeat_the_marked_line_then_the_added_code(smoke_data, add):
    cfg, tok, _ = smoke_data
    cfg = dataclasses.replace(cfg, copy_drill_add=add)
    rows = copy_drill_rows(cfg, tok, 60, seed=3)
    assert len(rows) == 60 and rows != copy_drill_rows(cfg, tok, 60, seed=4)
    end, n_added = tok.token_id("<end>"), 0
    for row in rows:
        lines = tok.decode(row.obs_ids).splitlines()
        marked = [line.removeprefix("copy: ") for line in lines if line.startswith("copy: ")]
        added = [line.removeprefix("add: ") for line in lines if line.startswith("add: ")]
        assert len(marked) == 1 and len(added) <= 1 and 1 <= len(lines) <= 4
        assert all(line.startswith(("copy: ", "skip: ")) for line in lines[:len(lines) - len(added)])
        codes = marked[0].split() + added
        assert 2 <= len(codes) <= 9 and all(len(c) == 5 and c.isupper() and c.isalpha() for c in codes)
        assert row.action_ids[-1] == end and tok.decode(row.action_ids[:-1]) == " " + " ".join(codes)
        n_added += len(added)
    assert (n_added > 0) == (add > 0) and n_added < len(rows)


def test_family_weights_set_the_share_of_training_episodes():
    cfg = TrainConfig.preset_named("smoke", families=("qa1", "kv"),
                                   family_weights=TrainConfig.parse_field("family_weights", "1,3"))
    assert cfg.family_weights == (1, 3)
    families = [e.family for e in training_episodes(cfg, 8, stream=1)]
    assert families.count("kv") == 6 and families.count("qa1") == 2
    equal = [e.family for e in training_episodes(TrainConfig.preset_named("smoke"), 8, stream=1)]
    assert equal.count("kv") == equal.count("qa1") == 4
    for bad in ((1,), (1, 0)):
        with pytest.raises(ValueError, match="one whole number >= 1 per family"):
            training_episodes(TrainConfig.preset_named("smoke", family_weights=bad), 2, stream=1)
    with pytest.raises(ValueError, match="whole numbers"):
        TrainConfig.parse_field("family_weights", "a,b")


def test_training_questions_and_focus_reach_the_teacher_rows():
    cfg = TrainConfig.preset_named("smoke", families=("qa3", "vt"), train_questions=2, focus=True)
    episodes = training_episodes(cfg, 4, stream=1)
    assert all(len(e.questions) == 2 for e in episodes)
    trajs = teacher_trajectories(cfg, episodes)
    assert all(sum(s.phase == "answer" for s in t.steps) == 4 for t in trajs)   # a read and an answer each
    reading = [s.text for t in trajs for s in t.steps if s.phase == "read"]
    assert all(text.endswith("</focus><act>") for text in reading)
    answering = [s.text for t in trajs for s in t.steps if s.phase == "answer"]
    assert all(text.endswith("</focus><act>") for text in answering)                # answer_focus, on by default
    off = teacher_trajectories(TrainConfig.preset_named("smoke", families=("qa3", "vt"), focus=False,
                                                        answer_focus=False), episodes)
    assert not any("<focus>" in s.text for t in off for s in t.steps)
    reads_only = teacher_trajectories(TrainConfig.preset_named("smoke", families=("qa3", "vt"), focus=True,
                                                               answer_focus=False), episodes)
    assert not any("<focus>" in s.text for t in reads_only for s in t.steps if s.phase == "answer")


def test_dense_frac_packs_more_facts_into_the_same_lengths():
    """dense_frac draws its own random numbers: the episodes it leaves alone, and every length, stay as they were."""
    base = TrainConfig.preset_named("smoke", families=("qa1", "qa2", "qa3", "vt", "kv"))
    dense = dataclasses.replace(base, dense_frac=0.5)
    plain, packed = training_episodes(base, 40, stream=1), training_episodes(dense, 40, stream=1)
    n_facts = [sum(e.is_fact) for e in plain]
    assert max(n_facts) <= 11 and [e.target_tokens for e in plain] == [e.target_tokens for e in packed]
    changed = [i for i, e in enumerate(packed) if e.sentences != plain[i].sentences]
    assert 6 <= len(changed) <= 26
    assert all(12 <= sum(packed[i].is_fact) <= 20 for i in changed)
    assert {packed[i].family for i in changed} == set(DENSE_FAMILIES)
