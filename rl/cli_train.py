"""`atommem-cli train`: the whole recipe (teacher data, tokenizer, SFT, GRPO, evaluation) in one command."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from rl.config import PRESETS, TrainConfig


@click.command("train")
@click.option("--preset", default="tiny", show_default=True, type=click.Choice(sorted(PRESETS)),
              help="Named size: smoke (tests, a minute), tiny (2-core CPU), small (one GPU), ablate (the "
                   "shorter budget every workflow gets in `make ablations`).")
@click.option("--workflow", default="atommem", show_default=True, help="Memory workflow to train (see eval --help).")
@click.option("--stage", default="all", show_default=True, type=click.Choice(["all", "sft", "rl"]),
              help="Run everything, or only SFT, or only GRPO from the run's SFT policy.")
@click.option("--out", "out_dir", default=None, help="Run directory [default: runs/PRESET].")
@click.option("--resume", is_flag=True, help="Continue a stopped run from its newest complete checkpoint.")
@click.option("--seed", default=None, type=int, help="Training seed (evaluation seeds never overlap it).")
@click.option("--sft-steps", default=None, type=int, help="Override the preset's number of SFT steps.")
@click.option("--rl-iters", default=None, type=int, help="Override the preset's number of GRPO iterations.")
@click.option("--families", default=None, help="Comma-separated task families, e.g. qa1,kv.")
@click.option("--haystack", type=click.Path(), default=None,
              help="Background text for training episodes (any UTF-8 text; default: generated filler).")
@click.option("--babi-train", multiple=True, type=click.Path(),
              help="bAbI-format file whose questions join the SFT data (repeatable).")
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Override any TrainConfig field (rl/config.py), e.g. --set rl_lr=2e-4 --set group_size=4 "
                   "(repeatable; applied after the options above).")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def train(preset, workflow, stage, out_dir, resume, seed, sft_steps, rl_iters, families, haystack, babi_train,
          settings, no_progress):
    """Train a memory policy end to end and compare SFT, SFT+GRPO and the scripted teacher.

    Writes the run into --out (checkpoints, metrics.jsonl, plots, results.md) and points a `latest` link beside
    it (runs/latest for any --out under runs/) at the final policy, which `atommem-cli eval` and `atommem-cli chat`
    use by default.
    """
    overrides = {"workflow": workflow}
    if seed is not None:
        overrides["seed"] = seed
    if sft_steps is not None:
        overrides["sft_steps"] = sft_steps
    if rl_iters is not None:
        overrides["rl_iters"] = rl_iters
    if families:
        from atommem.tasks.registry import FAMILIES
        fams = tuple(f.strip() for f in families.split(",") if f.strip())
        bad = [f for f in fams if f not in FAMILIES]
        if bad:
            click.echo(f"error: unknown task families {bad}; choose from {', '.join(FAMILIES)}", err=True)
            sys.exit(2)
        overrides["families"] = fams
    from atommem.workflows import WORKFLOWS
    if workflow not in WORKFLOWS:
        click.echo(f"error: unknown workflow {workflow!r}; choose from {', '.join(WORKFLOWS)}", err=True)
        sys.exit(2)
    for path in (haystack, *babi_train):
        if path and not Path(path).is_file():
            click.echo(f"error: no such file: {path}", err=True)
            sys.exit(2)
    if haystack:
        overrides["haystack"] = str(Path(haystack).resolve())
    if babi_train:
        overrides["babi_train"] = tuple(str(Path(p).resolve()) for p in babi_train)
    for item in settings:
        key, sep, raw = item.partition("=")
        try:
            if not sep:
                raise ValueError(f"--set takes FIELD=VALUE, got {item!r}")
            overrides[key.strip()] = TrainConfig.parse_field(key.strip(), raw.strip())
        except ValueError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
    cfg = TrainConfig.preset_named(preset, **overrides)
    from rl.pipeline import train as run
    from rl.sft import NonFiniteLoss
    try:
        run(cfg, out_dir or f"runs/{preset}", stage=stage, resume=resume, progress=not no_progress)
    except NonFiniteLoss as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(3)
