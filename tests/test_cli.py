"""The command line as a user meets it: help texts, exit codes, formats, the sample state."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.desired.schema import KINDS, dumps

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "desired-state"


def cli(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env} if env else None,
    )


def test_help_lists_commands() -> None:
    r = cli("--help")
    assert r.returncode == 0
    for command in ("validate", "schema", "demo", "tenant"):
        assert command in r.stdout


@pytest.mark.parametrize("command", ["validate", "schema", "demo"])
def test_each_command_explains_itself(command: str) -> None:
    r = cli(command, "--help")
    assert r.returncode == 0, r.stderr
    assert "Usage:" in r.stdout and len(r.stdout.splitlines()) > 5


def _commands() -> list[tuple[list[str], str]]:
    """Every command's words and docstring, sub-commands included (from the lazy table)."""
    import importlib

    import typer

    from reconciler.cli import COMMANDS

    out: list[tuple[list[str], str]] = []
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"reconciler.commands.{module_name}")
        sub = getattr(module, "app", None)
        if isinstance(sub, typer.Typer):
            out += [
                ([name, c.name or ""], c.callback.__doc__ or "")
                for c in sub.registered_commands
                if c.callback
            ]
        else:
            out.append(([name], module.run.__doc__ or ""))
    return out


def test_every_command_has_help() -> None:
    for words, doc in _commands():
        assert doc.strip(), f"reconciler {' '.join(words)} has no help text"


@pytest.mark.parametrize("words", [w for w, _ in _commands()], ids=" ".join)
def test_help_paragraphs_are_not_broken_mid_sentence(words: list[str]) -> None:
    """On a wide terminal each paragraph of a command's help is one line: the help wraps to
    the terminal, not at the docstring's line breaks (Typer's rich help keeps those)."""
    from typer.testing import CliRunner

    from reconciler.cli import app

    r = CliRunner().invoke(app, [*words, "--help"], env={"COLUMNS": "2000"})
    assert r.exit_code == 0, r.output
    doc = dict((tuple(w), d) for w, d in _commands())[tuple(words)]
    lines = [ln.strip(" │") for ln in r.output.splitlines()]
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        if paragraph.startswith(" "):
            continue  # an indented example is kept as written
        text = " ".join(ln.strip() for ln in paragraph.splitlines())
        assert text in lines, f"not on one line in `reconciler {' '.join(words)} --help`: {text}"


def test_sample_state_validates() -> None:
    r = cli("validate")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().startswith("valid: 40 users, 13 groups")


def test_sample_state_is_realistic() -> None:
    from reconciler.desired.loader import load

    state = load(SAMPLE).state
    assert state is not None
    assert len(state.users) >= 40 and len(state.groups) >= 8 and len(state.rules) >= 6
    teams = {u.attributes.get("department") for u in state.users}
    assert len(teams) >= 6
    products = {p for r in state.rules for p in r.grants.products}
    assert {"GoTo Meeting", "GoTo Webinar", "GoTo Connect", "GoTo Resolve"} <= products
    names = {a.name for a in state.attributes}
    assert {"employeeNumber", "costCenter", "division", "department"} <= names
    assert any(u.attributes.get("employmentType") == "contractor" for u in state.users)
    assert state.tenant.protected == ["breakglass-admin@acme.example"]
    # The break-glass account is a declared user whose group a rule makes super-admin.
    breakglass = state.user_by_name["breakglass-admin@acme.example"]
    assert any(
        r.grants.role == "super-admin"
        and {g.casefold() for g in r.match.groups_any} & {g.casefold() for g in breakglass.groups}
        for r in state.rules
    )
    own = names - {"employeeNumber", "costCenter", "division", "department"}
    assert own, "at least one custom attribute of our own"


def _broken(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    root.mkdir()
    (root / "tenant.yaml").write_text("url: local:x.db\n")
    (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n    groups: [Nope]\n")
    return root


def test_invalid_state_exit_1_text(tmp_path: Path) -> None:
    r = cli("validate", str(_broken(tmp_path)), cwd=tmp_path)
    assert r.returncode == 1
    assert "state/users.yaml:3:14: error: unknown group 'Nope'" in r.stdout
    assert "hint: declare it in groups/*.yaml first" in r.stdout
    assert r.stdout.strip().endswith("invalid: 1 error, 0 warnings")
    assert "Traceback" not in r.stdout + r.stderr


def test_invalid_state_github_annotations(tmp_path: Path) -> None:
    r = cli("validate", "--format", "github", str(_broken(tmp_path)), cwd=tmp_path)
    assert r.returncode == 1
    assert (
        "::error file=state/users.yaml,line=3,col=14::unknown group 'Nope' "
        "(declare it in groups/*.yaml first)"
    ) in r.stdout


def test_invalid_state_json(tmp_path: Path) -> None:
    r = cli("validate", "--format", "json", str(_broken(tmp_path)), cwd=tmp_path)
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["valid"] is False and data["errors"] == 1
    assert data["diagnostics"][0]["line"] == 3


def test_missing_directory(tmp_path: Path) -> None:
    r = cli("validate", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.startswith("nope: error: no such directory\n")
    assert "Traceback" not in r.stderr


def test_committed_schemas_are_current() -> None:
    for kind in KINDS:
        committed = (SAMPLE / ".schemas" / f"{kind}.schema.json").read_text()
        assert committed == dumps(kind), f"run `reconciler schema` to refresh {kind}"


def test_sample_files_carry_schema_modelines() -> None:
    for path in SAMPLE.rglob("*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("=", 1)[1]).resolve()
        assert target.is_file(), f"{path}: modeline points at a missing schema"


def _modeline_schema(path: Path) -> dict[str, object]:
    first = path.read_text().splitlines()[0]
    target = path.parent / first.split("=", 1)[1]
    schema: dict[str, object] = json.loads(target.read_text())
    return schema


def test_sample_files_pass_their_modeline_schema() -> None:
    """What an editor with yaml-language-server shows: no error on a valid sample file
    (the email shorthand `emails: [a@x]` was once flagged on every user)."""
    import jsonschema
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    for path in sorted(SAMPLE.rglob("*.yaml")):
        validator = jsonschema.Draft202012Validator(_modeline_schema(path))
        errors = [e.message for e in validator.iter_errors(yaml.load(path.read_text()))]
        assert errors == [], f"{path}: {errors[:3]}"


def test_schema_flags_what_validate_flags() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(_modeline_schema(SAMPLE / "users" / "sales.yaml"))
    bad = {
        "users": [
            {"userName": "a@acme.example", "titel": "CEO"},
            {"userName": "b@acme.example", "emails": ["not-an-address"]},
            {"userName": "c@acme.example", "emails": [{"value": "c@acme.example", "type": "x"}]},
        ]
    }
    flagged = sorted(tuple(e.absolute_path) for e in validator.iter_errors(bad))
    assert flagged == [("users", 0), ("users", 1, "emails", 0), ("users", 2, "emails", 0)]


def test_schema_writes_every_kind(tmp_path: Path) -> None:
    r = cli("schema", "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for kind in KINDS:
        assert (tmp_path / "s" / f"{kind}.schema.json").read_text() == dumps(kind)
    assert "# yaml-language-server: $schema=" in r.stdout


def test_schema_to_an_unwritable_place_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    r = cli("schema", "--out", "afile/x", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot write the schemas to afile/x: Not a directory")
    assert "Traceback" not in r.stderr


def test_schema_unknown_kind() -> None:
    r = cli("schema", "--kind", "user")
    assert r.returncode == 1
    assert r.stderr == (
        "error: unknown kind 'user'\n"
        "  hint: did you mean 'users'? use one of: tenant, users, groups, rules, attributes\n"
    )


def test_schema_to_stdout() -> None:
    r = cli("schema", "--kind", "users")
    assert r.returncode == 0
    assert json.loads(r.stdout)["properties"]["users"]["type"] == "array"


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("reconciler ")


def test_public_api_is_explicit() -> None:
    import reconciler

    assert sorted(reconciler.__all__) == sorted(set(reconciler.__all__))
    for name in reconciler.__all__:
        assert hasattr(reconciler, name), name


BAD_INPUTS: dict[str, dict[str, str | bytes]] = {
    "alias bomb": {
        "users.yaml": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    },
    "binary file": {"users.yaml": bytes(range(256)) * 4},
    "empty tenant.yaml": {"tenant.yaml": ""},
    "invalid YAML": {"users.yaml": "users:\n  - userName: [a\n"},
    "merge key": {"users.yaml": "users:\n  - <<: {userName: a@x.example}\n"},
    "not UTF-8": {"users.yaml": b"users:\n  - userName: \xff\n"},
    "tenant.yaml is a list": {"tenant.yaml": "- url: local:x.db\n"},
    "deep nesting": {"users.yaml": "users: " + "[{a: " * 50_000 + "}]" * 50_000 + "\n"},
    "a literal secret": {"tenant.yaml": "url: https://x.example\nauth: {client_secret: s3cr3t}\n"},
}


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_reported_never_a_traceback(tmp_path: Path, case: str, fmt: str) -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    root = tmp_path / "state"
    root.mkdir()
    files: dict[str, str | bytes] = {"tenant.yaml": "url: local:x.db\n", **BAD_INPUTS[case]}
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        (root / name).write_bytes(data)
    r = CliRunner().invoke(app, ["validate", "--format", fmt, str(root)])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output and "s3cr3t" not in r.output
    if fmt == "json":
        assert json.loads(r.output)["valid"] is False
    elif fmt == "github":
        assert any(ln.startswith("::error file=") for ln in r.output.splitlines())
    else:
        assert any(": error: " in ln for ln in r.output.splitlines())


def test_python_dash_m_and_github_format_for_a_syntax_error(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "tenant.yaml").write_text("url: local:x.db\n")
    (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n    title: 'CEO\n")
    r = cli("validate", "-f", "github", "state", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == ""
    assert r.stdout.splitlines() == [
        "::warning file=state/users.yaml::references to groups, users and attributes were not "
        "checked: this file could not be read, and may declare some of them (fix the errors "
        "reported for the unreadable files, then validate again)",
        "::error file=state/users.yaml,line=3,col=12::a quoted value is not closed: YAML read "
        "on to the end of the file (found unexpected end of stream) (close the quote on this "
        "line)",
        "invalid: 1 error, 1 warning",
    ]


def test_a_mistyped_policies_directory_is_an_error(tmp_path: Path) -> None:
    """Only the default policies/ may be absent; a typo must not skip the guardrails."""
    r = cli("validate", str(SAMPLE), "--policies", "polices", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.startswith("polices: error: no such policy directory\n")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_an_unreadable_policy_file_is_reported(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    # Reading /proc/self/mem from offset 0 fails with EIO, even for root.
    (policies / "broken.yaml").symlink_to("/proc/self/mem")
    r = cli("validate", str(SAMPLE), "--policies", "policies", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stdout.startswith("policies/broken.yaml: error: cannot read: Input/output error\n")


def test_validate_warns_of_rules_that_match_nobody_or_are_shadowed(tmp_path: Path) -> None:
    """The rule lints the plan shows are on the pull request's diff already at validate."""
    root = tmp_path / "state"
    root.mkdir()
    (root / "tenant.yaml").write_text("url: local:t.db\n")
    (root / "groups.yaml").write_text("groups:\n  - displayName: Sales\n  - displayName: Ops\n")
    (root / "users.yaml").write_text("users:\n  - userName: a@x.example\n    groups: [Sales]\n")
    (root / "rules.yaml").write_text(
        "rules:\n"
        "  - name: Sales\n    priority: 10\n    match: {groups_any: [Sales]}\n"
        "    grants: {role: seller}\n"
        "  - name: Sales again\n    priority: 20\n    match: {groups_any: [Sales]}\n"
        "    grants: {role: member}\n"
        "  - name: Ops\n    priority: 30\n    match: {groups_any: [Ops]}\n"
        "    grants: {role: operator}\n"
    )
    r = cli("validate", str(root), "--format", "github", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr  # warnings do not fail validation
    lines = r.stdout.splitlines()
    assert any(
        line.startswith("::warning file=state/rules.yaml,line=6,col=5")
        and "rule 'Sales again' is shadowed" in line
        for line in lines
    ), r.stdout
    assert any(
        line.startswith("::warning file=state/rules.yaml,line=10,col=5")
        and "rule 'Ops' matches no user" in line
        for line in lines
    ), r.stdout


def test_validate_warns_of_settings_the_profile_cannot_carry_out(tmp_path: Path) -> None:
    """A tenant.yaml that promises deletions its vendor does not do (Genesys keeps groups,
    GoTo suspends users) is warned of at the setting; a profile that can, is not."""
    root = tmp_path / "state"
    root.mkdir()
    settings = (
        "lifecycle:\n  removed_groups: delete\n  removed_users: delete\n"
        "ownership: {users: delete, groups: delete}\n"
    )
    found = {}
    for profile in ("genesys", "goto", "generic"):
        (root / "tenant.yaml").write_text(f"url: local:t.db\nprofile: {profile}\n{settings}")
        r = cli("validate", str(root), "--format", "github", cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr  # warnings do not fail validation
        found[profile] = [line for line in r.stdout.splitlines() if line.startswith("::")]
    assert [line.split("::")[1] for line in found["genesys"]] == [
        "warning file=state/tenant.yaml,line=4,col=19",
        "warning file=state/tenant.yaml,line=6,col=36",
    ]
    assert (
        "the genesys profile cannot delete groups: a group removed from git is emptied"
        in (found["genesys"][0])
    )
    assert "a group not in desired-state is reported, not deleted" in found["genesys"][1]
    assert [line.split("::")[1] for line in found["goto"]] == [
        "warning file=state/tenant.yaml,line=5,col=18",
        "warning file=state/tenant.yaml,line=6,col=20",
    ]
    assert "the goto profile does not delete users by sync" in found["goto"][0]
    assert found["generic"] == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '{"tenant_url": 3}',
            "is not a reconciler plan: tenant_url: Input should be a valid string",
        ),
        ("[]", "is not a reconciler plan: the file: Input should be an object"),
        ("not json", "is not a reconciler plan: the file: Invalid JSON"),
    ],
)
def test_show_names_what_is_wrong_with_a_file_that_is_not_a_plan(
    tmp_path: Path, content: str, expected: str
) -> None:
    (tmp_path / "plan.json").write_text(content)
    r = cli("show", "plan.json", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert expected in r.stderr


def _saved_plan(tmp_path: Path) -> dict[str, object]:
    """A real plan of the sample state against an empty tenant, as `plan --out` writes it."""
    import datetime as dt

    from reconciler.desired.loader import load
    from reconciler.live import LiveState
    from reconciler.plan.build import PlanContext, build_plan
    from reconciler.plan.render import render_json

    state = load(SAMPLE).state
    assert state is not None
    plan = build_plan(
        state,
        LiveState("https://scim.example/v2", (), ()),
        PlanContext(now=dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
    )
    data: dict[str, object] = json.loads(render_json(plan))
    assert data["changes"]
    return data


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.pop("changes"), "is not a reconciler plan: it has no changes"),
        (lambda d: d.pop("summary"), "is not a reconciler plan: it has no summary"),
        (
            lambda d: (d.pop("plan_hash"), d.pop("format_version")),
            "is not a reconciler plan: it has no format_version, plan_hash",
        ),
        (
            lambda d: d["changes"][0].update(key="mallory@x.example"),
            "the plan's changes do not match its plan_hash: it was edited after it was made",
        ),
        (
            lambda d: d["summary"].update(create=1),
            "the plan's summary does not count its changes",
        ),
        (lambda d: d.update(blocked=True), "the plan's blocked flag does not match its plan_hash"),
        (
            # The hash covers the changes only: a row hidden from the access table.
            lambda d: d.update(access=d["access"][1:]),  # type: ignore[index]
            "the plan's access table does not match its changes (the changes make ",
        ),
        (
            lambda d: d["access"][0]["gains"].append("mallory@x.example"),  # type: ignore[index]
            "the plan's access table does not match its changes (it lists mallory@x.example, "
            "whom no change touches)",
        ),
    ],
    ids=[
        "no changes",
        "no summary",
        "no hash",
        "edited change",
        "edited summary",
        "blocked",
        "access row hidden",
        "access row added",
    ],
)
def test_show_refuses_a_plan_that_is_incomplete_or_edited(
    tmp_path: Path, edit: object, expected: str
) -> None:
    """A reviewer must never be shown something other than what apply would run."""
    data = _saved_plan(tmp_path)
    (tmp_path / "good.json").write_text(json.dumps(data))
    assert cli("show", "good.json", cwd=tmp_path).returncode == 0
    edit(data)  # type: ignore[operator]
    (tmp_path / "plan.json").write_text(json.dumps(data))
    r = cli("show", "plan.json", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stdout == ""
    assert expected in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--detailed-exitcode", "--fromat", "json"],
        ["plan", "--format", "xml"],
        ["plan", "--target"],
        ["show"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_1_never_2(args: list[str]) -> None:
    """2 is `plan --detailed-exitcode`'s "changes to apply": a typo in CI must not read so."""
    r = cli(*args)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and ("Usage:" in r.stderr or "Error" in r.stderr)


def test_plan_out_that_cannot_be_a_file_fails_before_reading_the_tenant(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "afile").write_text("x")
    # An unreachable tenant: were it read first, the error would be about the tenant.
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}
    for out, expected in (
        ("dir", "--out dir is a directory"),
        ("afile/plan.json", "--out afile/plan.json: afile is a file, not a directory"),
    ):
        r = cli("plan", str(SAMPLE), "--out", out, cwd=tmp_path, env=env)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert f"error: {expected}" in r.stderr and "hint: name a file" in r.stderr
        assert r.stdout == ""


@pytest.mark.parametrize("empty", ["", "   ", "\t"])
def test_an_empty_target_is_a_usage_error_not_a_plan_of_nobody(tmp_path: Path, empty: str) -> None:
    """`--target "$NAME"` with NAME unset: refused before anything is read, never planned as
    "only  and their memberships"."""
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}  # unreachable: never read
    r = cli("plan", str(SAMPLE), "--target", "a@x.example", "--target", empty, env=env)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(
        "error: --target needs a userName or group displayName, and was given an empty value\n"
        "  hint: write e.g. --target alice@acme.example"
    ), r.stderr


def test_resume_or_retry_without_a_plan_file_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    """Without PLAN_FILE apply plans anew: --retry-failed would be silently meaningless."""
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}
    for flag in ("--resume", "--retry-failed"):
        r = cli("apply", "--dir", str(SAMPLE), flag, "--auto-approve", cwd=tmp_path, env=env)
        assert r.returncode == 1 and r.stdout == "", r.stdout
        assert f"error: {flag} continues the apply of a saved plan" in r.stderr


def test_show_markdown_of_a_big_plan_points_to_the_file_shown(tmp_path: Path) -> None:
    from reconciler.plan.hashing import plan_hash
    from reconciler.plan.model import Change, FieldChange, Plan

    changes = tuple(
        Change(
            action="create",
            resource_type="User",
            key=f"user{i}@x.example",
            reason="in desired-state, not in the tenant",
            fields=(FieldChange(path="title", after="Engineer " * 5),),
        )
        for i in range(2000)
    )
    plan = Plan(
        tenant_url="local:x",
        plan_hash=plan_hash("local:x", changes),
        changes=changes,
        summary={"create": len(changes)},
    )
    (tmp_path / "big-plan.json").write_text(plan.model_dump_json())
    r = cli("show", "big-plan.json", "--format", "markdown", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Summarised to fit a comment" in r.stdout
    assert "The full plan is in the plan artifact (reconciler show big-plan.json)." in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["plan", str(SAMPLE), "--tenant", ""],
        ["plan", str(SAMPLE), "--tenant", "  "],
        ["apply", "--dir", str(SAMPLE), "--tenant", "", "--auto-approve"],
        ["apply", "plan.json", "--dir", str(SAMPLE), "--tenant", ""],
        ["tenant", "status", str(SAMPLE), "--tenant", ""],
    ],
)
def test_an_empty_tenant_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    """`--tenant "$URL"` with URL unset: refused, never a plan (or an apply) of the tenant
    RECONCILER_TENANT_URL or tenant.yaml names."""
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}  # unreachable: never read
    r = cli(*args, cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(
        "error: --tenant needs a tenant URL, and was given an empty value\n  hint: write e.g."
    ), r.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["plan", str(SAMPLE), "-o", ""], "--out"),
        (["plan", str(SAMPLE), "--out", " "], "--out"),
        (["apply", "--dir", str(SAMPLE), "--receipt", "", "--auto-approve"], "--receipt"),
    ],
)
def test_an_empty_out_file_says_it_is_empty(tmp_path: Path, args: list[str], option: str) -> None:
    """`--out ""` used to read as `--out .`, "a directory"."""
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}
    r = cli(*args, cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(
        f"error: {option} needs a file name, and was given an empty value\n"
    ), r.stderr
    assert "is a directory" not in r.stderr


def test_a_mistyped_gate_in_allow_gets_a_did_you_mean(tmp_path: Path) -> None:
    env = {"RECONCILER_TENANT_URL": "http://127.0.0.1:9/v2"}
    r = cli("plan", str(SAMPLE), "--allow", "suspension=1", cwd=tmp_path, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "hint: did you mean suspensions=1?" in r.stderr


def test_errors_show_control_characters_escaped(tmp_path: Path) -> None:
    """An error names what it was given: a line feed in it is shown as \\n, never a line
    of its own (in a GitHub Actions log, one that starts with :: is a workflow command)."""
    r = cli("show", "x\n::error file=desired-state/tenant.yaml::all good.json", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "cannot read x\\n::error file=" in r.stderr
    assert not [line for line in r.stderr.splitlines() if line.startswith("::")]
