"""What `reconciler validate` prints for mistakes made in a copy of the sample desired state:
every error at once, each at its file:line:col with a hint that fits it, and exit code 1."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.desired.loader import load

SAMPLE = Path(__file__).resolve().parents[2] / "desired-state"


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", root.name],
        cwd=root.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in r.stdout + r.stderr
    return r


def errors(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if ": error: " in ln or ": warning: " in ln]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, tmp_path / "ds"))


def test_a_duplicate_key_does_not_hide_the_other_errors_of_its_file(state: Path) -> None:
    path = state / "users" / "engineering.yaml"
    text = path.read_text(encoding="utf-8")
    first = re.search(r"^  - userName: (\S+)$", text, re.MULTILINE)
    assert first is not None
    first_line = text[: first.start()].count("\n") + 1
    # The sample's required custom attributes, as its first user has them.
    attributes = re.search(r"^    attributes:\n(?:      .*\n)+", text, re.MULTILINE)
    assert attributes is not None
    n = text.count("\n")  # the new entry starts on line n + 1
    m = n + 7 + attributes.group(0).count("\n")  # its last line
    path.write_text(
        text
        + "  - userName: new.hire@acme.example\n"  # n + 1
        + "    externalId: 09101\n"
        + "    title: Engineer\n"
        + "    title: Senior Engineer\n"  # n + 4
        + "    groups: Engineering\n"
        + "    emails: {work: new.hire@acme.example}\n"
        + "    manager: nobody@acme.example\n"
        + attributes.group(0)
        + "  - UserName: other.hire@acme.example\n"  # m + 1
        + f"  - userName: {first.group(1).upper()}\n"
        + attributes.group(0),
        encoding="utf-8",
    )
    r = validate(state)
    f = "ds/users/engineering.yaml"
    assert errors(r.stdout) == [
        f"{f}:{n + 2}:17: error: externalId must be a string, not int 9101",
        f"{f}:{n + 4}:5: error: duplicate key 'title' (first declared at {f}:{n + 3})",
        f"{f}:{n + 5}:13: error: groups must be a list, not str 'Engineering'",
        f"{f}:{n + 6}:5: error: emails must be a list, not a mapping",
        f"{f}:{n + 7}:14: error: unknown manager 'nobody@acme.example'",
        f"{f}:{m + 1}:5: error: missing required key 'userName'",
        f"{f}:{m + 1}:5: error: unknown key 'UserName'",
        f"{f}:{m + 2}:15: error: duplicate userName '{first.group(1).upper()}' "
        f"(first declared at {f}:{first_line})",
    ]
    assert "were not checked" not in r.stdout
    assert r.stdout.strip().endswith("invalid: 8 errors, 0 warnings")
    assert r.returncode == 1


def test_a_misspelt_section_is_one_error_not_one_per_reference(state: Path) -> None:
    path = state / "users" / "finance.yaml"
    text = path.read_text(encoding="utf-8")
    assert re.search(r"^users:", text, re.MULTILINE)
    path.write_text(re.sub(r"^users:", "user:", text, flags=re.MULTILINE), encoding="utf-8")
    line = text[: text.index("\nusers:") + 1].count("\n") + 1
    r = validate(state)
    assert r.stdout.splitlines() == [
        f"ds/users/finance.yaml:{line}:1: error: unknown section 'user'",
        "    hint: did you mean 'users'? sections are: users, groups, rules, attributes",
        "invalid: 1 error, 0 warnings",
    ]
    assert r.returncode == 1


def minimal(tmp_path: Path, users: str) -> Path:
    root = tmp_path / "ds"
    (root / "users").mkdir(parents=True)
    (root / "tenant.yaml").write_text("url: local:tenant.db\n", encoding="utf-8")
    (root / "users" / "users.yaml").write_text(users, encoding="utf-8")
    return root


def test_a_mapping_where_a_list_belongs_gets_a_list_hint(tmp_path: Path) -> None:
    root = minimal(
        tmp_path,
        "users:\n"
        "  - userName: new.hire@acme.example\n"
        "    emails: {work: new.hire@acme.example}\n"
        "    groups: {Engineering: true}\n",
    )
    r = validate(root)
    f = "ds/users/users.yaml"
    assert r.stdout.splitlines() == [
        f"{f}:3:5: error: emails must be a list, not a mapping",
        "    hint: write a list: emails: [name@domain.tld], or one '- item' per line",
        f"{f}:4:5: error: groups must be a list, not a mapping",
        "    hint: write a list: groups: [a, b], or one '- item' per line",
        "invalid: 2 errors, 0 warnings",
    ]
    assert r.returncode == 1


def test_a_list_where_one_value_belongs_still_asks_for_one_value(tmp_path: Path) -> None:
    root = minimal(tmp_path, "users:\n  - userName: new.hire@acme.example\n    title: [A]\n")
    [d] = load(root).diagnostics
    assert (d.line, d.col, d.message, d.hint) == (
        3,
        5,
        "title must be a string, not a list",
        "write one plain value here",
    )
