"""``reconciler tenant seed``: fill a tenant database directly, for demos and benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from reconciler.tenant.seed import seed


def run(
    db: Path = typer.Option(..., "--db", help="The tenant's SQLite database."),
    users: int = typer.Option(1000, "--users", min=0, help="How many users to add."),
    groups: int = typer.Option(20, "--groups", min=0, help="How many groups to add."),
    seed_: int = typer.Option(0, "--seed", help="Random seed: the same seed, the same data."),
) -> None:
    """Add generated users and groups (each user in 1 to 4 groups) straight into the database."""
    start = time.perf_counter()
    seed(db, users, groups, seed=seed_)
    typer.echo(f"seeded {users} users and {groups} groups in {time.perf_counter() - start:.1f} s")
