"""Command-line entry point: parses and dispatches, nothing else.

Each command lives in its own module under ``reconciler/commands/``. Errors meant for people
(:class:`~reconciler.errors.ReconcilerError`) become a message and exit code 1 here, once.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer._click import Command, Context  # typer's own click: what its groups hold
from typer._click.exceptions import UsageError
from typer.core import TyperGroup
from typer.main import get_command

from reconciler import __version__
from reconciler.diagnostics import render_text
from reconciler.errors import ReconcilerError
from reconciler.terminal import visible

# Command name -> module under reconciler.commands (its ``run``, or its ``app`` for a group).
# A module is imported only when its command runs (or for the full --help), so a command
# does not pay at start-up for the libraries of all the others.
COMMANDS = {
    "validate": "validate",
    "schema": "schema",
    "plan": "plan",
    "show": "show",
    "apply": "apply",
    "receipts": "receipts",
    "import": "import_",
    "history": "history",
    "access": "access",
    "demo": "demo",
    "tenant": "tenant",
    "github": "github",
}


def _reflow(doc: str) -> str:
    """A docstring as help text: the lines of each paragraph joined, so Typer's help wraps
    them to the terminal instead of keeping the source's line breaks mid-sentence. Indented
    paragraphs (examples) are kept as written."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        p if p.startswith(" ") else " ".join(line.strip() for line in p.splitlines())
        for p in paragraphs
    )


def _reflow_help(sub: typer.Typer) -> None:
    """Reflow the help of every command of ``sub`` (and of its sub-groups) from docstrings."""
    for info in sub.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = _reflow(info.callback.__doc__)
    for group in sub.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


def _load(name: str) -> Command:
    module = importlib.import_module(f"reconciler.commands.{COMMANDS[name]}")
    sub = getattr(module, "app", None)
    if not isinstance(sub, typer.Typer):
        sub = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        sub.command(name)(module.run)
    _reflow_help(sub)
    command = get_command(sub)
    command.name = name
    return command


class _Commands(MutableMapping[str, Command]):
    """The group's commands: those registered eagerly, then the lazy ones, loaded on use."""

    def __init__(self, eager: MutableMapping[str, Command]) -> None:
        self._loaded = dict(eager)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = _load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self._loaded]))

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._loaded))


class _LazyGroup(TyperGroup):
    """The top-level group: commands loaded lazily, and usage errors exit 1."""

    def __init__(self, **attrs: object) -> None:
        super().__init__(**attrs)  # type: ignore[arg-type]
        self.commands = _Commands(self.commands)

    # Click exits 2 on a usage error, the code `plan --detailed-exitcode` gives to "changes
    # to apply": a mistyped option in CI would read as a pending plan. Every error exits 1.
    def make_context(self, *args: Any, **kwargs: Any) -> Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as exc:
            exc.exit_code = 1
            raise

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            exc.exit_code = 1
            raise


app = typer.Typer(
    name="reconciler",
    cls=_LazyGroup,
    help=(
        "GitOps for identity: keep users, groups, access rules and custom attributes as YAML "
        "in git, plan against a live SCIM 2.0 tenant, apply exactly what was reviewed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reconciler {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """GitOps for identity."""


def main() -> None:
    try:
        app()
    except ReconcilerError as exc:
        diagnostics = getattr(exc, "diagnostics", None)
        if diagnostics:
            print(render_text(diagnostics), file=sys.stderr)
        # Messages name accounts and quote the tenant: escaped, as in a plan (see visible).
        msg = f"error: {visible(exc)}" + "".join(f"\n  {visible(d)}" for d in exc.details)
        if exc.hint:
            msg += f"\n  hint: {visible(exc.hint)}"
        print(msg, file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
