"""`atommem-cli`: the command-line face of the project.

Each sub-command lives in its own module (`atommem/cli_*.py`, `rl/cli_train.py`) and is registered here, so this
file stays a table of contents. Run `atommem-cli --help` for the list.
"""
import importlib

import click

_COMMANDS = {
    "data": ("atommem.cli_data", "data"),
    "eval": ("atommem.cli_eval", "eval_command"),
    "train": ("rl.cli_train", "train"),
    "chat": ("atommem.cli_chat", "chat"),
}


class _LazyGroup(click.Group):
    """Imports a command's module only when that command runs (torch is slow to import)."""

    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attr = _COMMANDS[name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith(module.split(".")[0]):
                return None
            raise


@click.group(cls=_LazyGroup)
def main():
    """AtomMem: train, evaluate and talk to an agent that manages its memory with atomic CRUD operations."""


if __name__ == "__main__":
    main()
