"""`atommem-cli data`: write task episodes as JSON lines, or preview one episode.

Owns the `data` command only; generation lives in `atommem/tasks/`. Episode i of a run uses seed `--seed + i`,
so any single episode can be regenerated on its own. Bad arguments and unreadable files end the command with exit
status 2 and one line on stderr.

Run:
    atommem-cli data --task qa2 --length 4k --n 100 --seed 0 --out qa2_4k.jsonl
    atommem-cli data --task vt --length 1k --preview
    atommem-cli data --babi tasks_1-20/qa1_train.txt --length 16k --haystack book.txt --out qa1_16k.jsonl
"""
from __future__ import annotations

import json
import sys
from typing import Iterable, Iterator

import click

from atommem.tasks.babi import babi_episode, parse_babi
from atommem.tasks.episode import Episode, count_tokens, parse_length
from atommem.tasks.haystack import Haystack
from atommem.tasks.registry import DESCRIPTIONS, FAMILIES, generate

PROGRESS_FROM = 50  # show a progress bar from this many episodes on
_FAMILY_HELP = "; ".join(f"{name}: {text}" for name, text in DESCRIPTIONS.items())


class DataError(click.ClickException):
    """A one-line failure: `error: reason` on stderr, exit status 2, no usage block and no traceback."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"atommem-cli data: error: {self.format_message()}", err=True)


class _OneLineCommand(click.Command):
    """Reports click's own argument errors (bad numbers, unknown options) as one line too."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as err:
            raise DataError(err.format_message()) from None


def render_preview(episode: Episode, color: bool, keep: int = 2) -> str:
    """The episode as readable text: facts marked (ANSI style when `color`, else `>>`), long background runs cut."""
    def fact_line(i: int, text: str) -> str:
        line = f"[{i:>5}] {text}"
        return click.style("   " + line, fg="yellow", bold=True) if color else ">> " + line

    def background_line(i: int, text: str) -> str:
        line = f"   [{i:>5}] {text}"
        return click.style(line, dim=True) if color else line

    header = (f"{episode.family} | {episode.n_tokens()} tokens (target {episode.target_tokens}) | seed {episode.seed}"
              f" | {sum(episode.is_fact)} facts among {len(episode.sentences)} sentences")
    lines = [click.style(header, bold=True) if color else header]
    run: list[int] = []

    def flush():
        shown = run if len(run) <= keep + 1 else run[:keep]
        for i in shown:
            lines.append(background_line(i, episode.sentences[i]))
        if len(shown) < len(run):
            hidden = run[keep:]
            tokens = sum(count_tokens(episode.sentences[i]) for i in hidden)
            lines.append(f"          ... {len(hidden)} more background sentences ({tokens} tokens) ...")
        run.clear()

    for i, (text, fact) in enumerate(zip(episode.sentences, episode.is_fact)):
        if fact:
            flush()
            lines.append(fact_line(i, text))
        else:
            run.append(i)
    flush()
    for q in episode.questions:
        lines.append(f"Q: {q.text}")
        answer = click.style(q.answer, fg="green", bold=True) if color else q.answer
        lines.append(f"A: {answer}    (support: {', '.join(map(str, q.support)) or 'none'})")
    return "\n".join(lines)


def _episodes(task, babi, length, n, seed, facts, questions, haystack) -> tuple[Iterator[Episode], int | None]:
    if babi is not None:  # parse (and validate) the whole file now, build background lazily while writing
        items = parse_babi(babi)[:n]
        hay = haystack if length is not None else None
        return (babi_episode(item, hay, length, seed + i) for i, item in enumerate(items)), len(items)
    count = 1 if n is None else n
    kw = {"n_facts": facts, "n_questions": questions, "haystack": haystack}
    return (generate(task, length or 1024, seed + i, **kw) for i in range(count)), count


@click.command("data", cls=_OneLineCommand, context_settings={"help_option_names": ["-h", "--help"]},
               epilog=f"Families: {_FAMILY_HELP}.")
@click.option("--task", type=click.Choice(FAMILIES), help="Generated task family (or use --babi).")
@click.option("--babi", "babi", metavar="FILE", help="Take questions from a bAbI-format file instead of a generator.")
@click.option("--length", metavar="TOKENS", help="Context length: 512, 1k, 4k, 16k, 128k, 1m ... "
              "[generators: 1k; --babi: the story alone unless given]")
@click.option("--n", "n", type=click.IntRange(min=1), help="Number of episodes [generators: 1; --babi: all].")
@click.option("--seed", type=int, default=0, show_default=True, help="Episode i uses seed SEED + i.")
@click.option("--facts", type=click.IntRange(min=1), help="Facts per episode [default: grows gently with length].")
@click.option("--questions", type=click.IntRange(min=1), default=1, show_default=True,
              help="Questions per generated episode (distinct targets).")
@click.option("--haystack", metavar="FILE", help="UTF-8 text to use as background [default: built-in filler].")
@click.option("--out", metavar="FILE",
              help="Write JSON lines here ('-' for stdout) [default: stdout unless --preview].")
@click.option("--preview", is_flag=True, help="Print the first episode readably: facts marked, question and answer.")
def data(task, babi, length, n, seed, facts, questions, haystack, out, preview):
    """Generate long-context QA episodes (facts hidden in background text) and write them as JSON lines.

    Lengths are counted with a tokenizer-free measure: every word and every punctuation mark is one token.
    Episode i uses seed SEED + i. Each JSON line holds family, sentences, is_fact, questions (text, answer,
    support = indices of the supporting sentences), seed and target_tokens.

    \b
    Examples:
      atommem-cli data --task qa2 --length 4k --n 100 --seed 0 --out qa2_4k.jsonl
      atommem-cli data --task vt --length 1k --preview
      atommem-cli data --babi qa1_test.txt --length 16k --haystack book.txt --out qa1_16k.jsonl
    """
    if (task is None) == (babi is None):
        raise DataError("give exactly one of --task FAMILY or --babi FILE")
    if babi is not None and (facts is not None or questions != 1):
        raise DataError("--facts and --questions apply to generated tasks (--task), not to --babi")
    if babi is not None and haystack is not None and length is None:
        raise DataError("--haystack with --babi needs --length (the context length to fill)")
    try:
        target = parse_length(length) if length is not None else None
        background = Haystack.from_file(haystack) if haystack is not None else None
        episodes, count = _episodes(task, babi, target, n, seed, facts, questions, background)
        if preview:
            first = next(episodes)
            click.echo(render_preview(first, color=sys.stdout.isatty()))
            episodes = _chain([first], episodes)
        if out is not None or not preview:
            _write(episodes, out or "-", count)
    except (ValueError, OSError) as err:
        raise DataError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None


def _chain(head: Iterable[Episode], tail: Iterator[Episode]) -> Iterator[Episode]:
    yield from head
    yield from tail


def _write(episodes: Iterator[Episode], out: str, count: int | None) -> None:
    from tqdm import tqdm

    stream = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")
    try:
        bar = tqdm(episodes, total=count, file=sys.stderr, unit="ep", desc="episodes",
                   disable=(count or 0) < PROGRESS_FROM)
        with bar:
            for episode in bar:
                stream.write(json.dumps(episode.to_json()) + "\n")
    finally:
        if stream is not sys.stdout:
            stream.close()


if __name__ == "__main__":
    data()
