"""Command-line entry point: parses and dispatches, nothing else.

Each command lives in its own module under ``reconciler/commands/``. Errors meant for people
(:class:`~reconciler.errors.ReconcilerError`) become a message and exit code 1 here, once.
"""

from __future__ import annotations

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
