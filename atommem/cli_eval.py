"""`atommem-cli eval`: exact match per task and context length on fresh seeds, for a checkpoint or the teacher.

The last line of stdout is one JSON object: {"accuracy": {TASK: {LENGTH: value}}} with values in [0, 1].
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from atommem.agent import AgentConfig


def _fail(msg: str) -> None:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def _print_trace(traj, out=None) -> None:
    out = out or sys.stdout            # looked up per call: a test runner may have swapped it since import
    ep = traj.episode
    print(f"--- {ep.family} episode (seed {ep.seed}), {len(traj.steps)} steps, reward {traj.reward:.2f}", file=out)
    for i, step in enumerate(traj.steps):
        o = step.observation
        if o.phase == "read":
            facts = [s for s, f in zip(o.chunk, o.chunk_is_fact) if f]
            view = f"chunk: {len(o.chunk)} sentences" + (f", facts {facts}" if facts else "")
        else:
            view = f"ask: {o.ask}"
        print(f"[{i:3d}] {o.phase:6s} query={o.query!r} memory={o.memory} | {view}", file=out)
        print(f"      -> {step.action.text or '(nothing)'}" + (f"  errors: {step.errors}" if step.errors else ""),
              file=out)
    print(f"answers {traj.answers} gold {[q.answer for q in ep.questions]}", file=out)


@click.command("eval")
@click.option("--ckpt", default="runs/latest", show_default=True, help="Policy directory of a trained run.")
@click.option("--policy", "policy_kind", default="model", show_default=True, type=click.Choice(["model", "teacher"]),
              help="Evaluate the checkpoint, or the scripted teacher (no checkpoint needed).")
@click.option("--task", default="qa1,qa2,qa3,vt,kv", show_default=True, help="Comma-separated task families.")
@click.option("--lengths", default="1k,4k,16k", show_default=True, help="Comma-separated context lengths.")
@click.option("--n", default=100, show_default=True, help="Episodes per (task, length).")
@click.option("--seed", default=1000, show_default=True, help="First seed (use seeds never used in training).")
@click.option("--workflow", default=None, help="Workflow [default: the one the checkpoint was trained for].")
@click.option("--top-k", default=None, type=int, help="Entries shown per read [default: the checkpoint's].")
@click.option("--hide-questions", is_flag=True, help="Show the questions only in the answer phase.")
@click.option("--babi", type=click.Path(), default=None, help="Take episodes from a bAbI-format file instead.")
@click.option("--haystack", type=click.Path(), default=None, help="Background text file (default: generated).")
@click.option("--out", "out_dir", default=None, help="Write results.json and accuracy.png here.")
@click.option("--trace", default=0, show_default=True, help="Print the full trajectory of N episodes.")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0),
              help="Processes that share the episodes on a CPU (0: one per core; 1: all in this process).")
@click.option("--step-errors", is_flag=True,
              help="Also compare the policy with the teacher on every teacher step of the same episodes "
                   "(teacher-forced), and print the mismatches per task and kind of step.")
@click.option("--divergences", is_flag=True,
              help="Also find, in each episode the policy got wrong, the first of its own steps where the teacher "
                   "would have acted otherwise, and print how those first departures are distributed.")
@click.option("--constrained/--free", default=None,
              help="Decode a learned policy's actions as well-formed operations of observation words only "
                   "(atommem/action_constraint.py) [default: the checkpoint's setting].")
def eval_command(ckpt, policy_kind, task, lengths, n, seed, workflow, top_k, hide_questions, babi, haystack,
                 out_dir, trace, workers, step_errors, divergences, constrained):
    """Evaluate a memory policy on fresh episodes; prints a Markdown table and a final JSON line."""
    from tqdm import tqdm

    from atommem.evaluate import evaluate, markdown_table, plot_accuracy
    from atommem.parallel import resolve_workers
    from atommem.tasks.episode import parse_length
    from atommem.tasks.registry import FAMILIES
    families = [t.strip() for t in task.split(",") if t.strip()]
    if not babi and (bad := [f for f in families if f not in FAMILIES]):
        _fail(f"unknown task {bad}; choose from {', '.join(FAMILIES)}")
    try:
        lens = [parse_length(x.strip()) for x in lengths.split(",") if x.strip()]
    except ValueError as err:
        _fail(str(err))
    agent = {}
    if policy_kind == "teacher":
        from atommem.teacher import TeacherPolicy
        policy = TeacherPolicy()
    else:
        from atommem.model_policy import PolicyLoadError, load_policy
        try:
            policy, agent = load_policy(ckpt)
        except PolicyLoadError as err:
            _fail(str(err))
        if constrained is not None:
            policy.sampling.constrained = constrained
    cfg = AgentConfig(**{**agent, "questions_visible": not hide_questions})
    if workflow:
        from atommem.workflows import WORKFLOWS
        if workflow not in WORKFLOWS:
            _fail(f"unknown workflow {workflow!r}; choose from {', '.join(WORKFLOWS)}")
        cfg.workflow = workflow
    if top_k:
        cfg.top_k = top_k
    hay, cells = None, None
    try:
        if haystack:
            from atommem.tasks.haystack import Haystack
            hay = Haystack.from_file(haystack)
        if babi:
            from atommem.tasks.babi import read_babi
            cells = []
            for length in lens:
                eps = read_babi(babi, haystack=hay, target_tokens=length, seed=seed)[:n]
                cells += [("babi", length, ep) for ep in eps]
    except Exception as err:  # unreadable or malformed user files: one line, exit 2
        _fail(str(err))
    if cells is None:
        from atommem.evaluate import episodes_for
        cells = episodes_for(families, lens, n, seed, hay)    # made once: --step-errors reuses them
    total = len(cells)
    bar = tqdm(total=total, desc="eval", unit="ep", file=sys.stderr, dynamic_ncols=True)
    result = evaluate(policy, families, lens, n, seed, cfg, haystack=hay, episodes=cells, progress=bar.update,
                      workers=resolve_workers(workers))
    bar.close()
    for traj in result.trajectories[:trace]:
        _print_trace(traj)
    click.echo(markdown_table(result))
    click.echo(f"mean exact match {result.mean_accuracy():.3f} over {total} episodes in {result.seconds:.1f} s")
    if step_errors:
        from atommem.step_errors import step_errors as teacher_forced
        report = teacher_forced(policy, cells, cfg)
        click.echo(f"\nteacher-forced steps that differ from the teacher: {report.rate():.3f}\n{report.markdown()}")
    if divergences:
        from atommem.evaluate import cell_labels
        from atommem.step_errors import first_divergences
        report = first_divergences(result.trajectories, cell_labels(cells))
        failed = sum(report.failed.values())
        click.echo(f"\nfirst departures from the teacher in the {failed} episodes not fully right"
                   + (f":\n{report.markdown()}" if failed else "."))
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result.to_json(), indent=1))
        plot_accuracy(result, out / "accuracy.png")
    click.echo(json.dumps({"accuracy": result.accuracy}))
