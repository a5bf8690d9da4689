"""Command-line entry point: parses and dispatches, nothing else.

Each command lives in its own module under ``reconciler/commands/``. Errors meant for people
(:class:`~reconciler.errors.ReconcilerError`) become a message and exit code 1 here, once.
"""

from __future__ import annotations

import inspect
import sys

import typer

from reconciler import __version__
from reconciler.commands import (
    access,
    apply,
    demo,
    github,
    history,
    import_,
    plan,
    receipts,
    schema,
    show,
    tenant,
    validate,
)
from reconciler.diagnostics import render_text
from reconciler.errors import ReconcilerError

app = typer.Typer(
    name="reconciler",
    help=(
        "GitOps for identity: keep users, groups, access rules and custom attributes as YAML "
        "in git, plan against a live SCIM 2.0 tenant, apply exactly what was reviewed."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("validate")(validate.run)
app.command("schema")(schema.run)
app.command("plan")(plan.run)
app.command("show")(show.run)
app.command("apply")(apply.run)
app.command("receipts")(receipts.run)
app.command("import")(import_.run)
app.command("history")(history.run)
app.command("access")(access.run)
app.command("demo")(demo.run)
app.add_typer(tenant.app, name="tenant")
app.add_typer(github.app, name="github")


def _reflow(doc: str) -> str:
    """A docstring as help text: the lines of each paragraph joined, so Typer's help wraps
    them to the terminal instead of keeping the source's line breaks mid-sentence. Indented
    paragraphs (examples) are kept as written."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(
        p if p.startswith(" ") else " ".join(line.strip() for line in p.splitlines())
        for p in paragraphs
    )


for _info in [
    *app.registered_commands,
    *(
        c
        for g in app.registered_groups
        if g.typer_instance
        for c in g.typer_instance.registered_commands
    ),
]:
    if _info.help is None and _info.callback is not None and _info.callback.__doc__:
        _info.help = _reflow(_info.callback.__doc__)


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
        msg = f"error: {exc}"
        if exc.hint:
            msg += f"\n  hint: {exc.hint}"
        print(msg, file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
