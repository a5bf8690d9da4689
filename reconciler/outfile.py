"""Files named on the command line (``plan --out``, ``apply --receipt``): checked before any
work is done, and written with a clear error instead of a traceback."""

from __future__ import annotations

from pathlib import Path

from reconciler.errors import UsageError


def out_file(value: str | None, option: str, example: str) -> Path | None:
    """The file an option names (``None`` when it is not given), checked by
    :func:`check_out_file`. Options take it as text, not as a Path: ``Path("")`` is ``.``, and
    an empty value (an unset variable: ``--out "$PLAN_FILE"``) would read as a directory."""
    if value is None:
        return None
    if not value.strip():
        raise UsageError(
            f"{option} needs a file name, and was given an empty value",
            f"write e.g. {option} {example}, or leave {option} out",
        )
    path = Path(value)
    check_out_file(path, option, example)
    return path


def check_out_file(path: Path, option: str, example: str) -> None:
    """Refuse, before any request, a path that cannot become a file: a directory, or one
    under a file. ``example``: a file name to suggest inside a directory."""
    if path.is_dir():
        raise UsageError(
            f"{option} {path} is a directory", f"name a file, e.g. {option} {path / example}"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(
                    f"{option} {path}: {parent} is a file, not a directory",
                    f"name a file in a directory, e.g. {option} {example}",
                )
            break


def write_out_file(path: Path, text: str, what: str, option: str) -> None:
    """Write ``text`` to ``path`` (its missing directories are created)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} to {path}: {exc.strerror or exc}",
            f"pass {option} a file you can write to",
        ) from exc
