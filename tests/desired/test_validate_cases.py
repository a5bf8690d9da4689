"""Every error class of `reconciler validate`, with its exact position and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.desired.loader import load
from reconciler.diagnostics import Severity

BASE = {
    "tenant.yaml": "url: local:tenant.db\nverified_domains: [acme.example]\n",
    "attributes.yaml": (
        "attributes:\n"
        "  - name: costCenter\n"
        "  - name: level\n"
        "    type: integer\n"
        "  - name: department\n"
        "    allowed_values: [Sales, Support]\n"
    ),
    "groups/groups.yaml": "groups:\n  - displayName: Sales\n  - displayName: Support\n",
    "rules.yaml": (
        "rules:\n"
        "  - name: Sales\n"
        "    priority: 10\n"
        "    match: {groups_any: [Sales]}\n"
        "    grants: {products: [GoTo Meeting]}\n"
    ),
    "users/users.yaml": "users:\n  - userName: ok@acme.example\n    groups: [Sales]\n",
}


def write(root: Path, files: dict[str, str | bytes | None]) -> Path:
    for rel, content in {**BASE, **files}.items():
        p = root / rel
        if content is None:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root


U = "users/users.yaml"

# (id, files to override, [(file, line, col, message)]) — message must match exactly.
CASES: list[tuple[str, dict[str, str | bytes | None], list[tuple[str, int, int, str]]]] = [
    (
        "unknown group",
        {U: "users:\n  - userName: a@acme.example\n    groups: [Sles]\n"},
        [(U, 3, 14, "unknown group 'Sles'")],
    ),
    (
        "unknown attribute",
        {U: "users:\n  - userName: a@acme.example\n    attributes:\n      costCentre: X\n"},
        [(U, 4, 7, "unknown custom attribute 'costCentre'")],
    ),
    (
        "unknown manager",
        {U: "users:\n  - userName: a@acme.example\n    manager: boss@acme.example\n"},
        [(U, 3, 14, "unknown manager 'boss@acme.example'")],
    ),
    (
        "manager cycle",
        {
            U: "users:\n"
            "  - userName: a@acme.example\n    manager: b@acme.example\n"
            "  - userName: b@acme.example\n    manager: c@acme.example\n"
            "  - userName: c@acme.example\n    manager: a@acme.example\n"
        },
        [
            (
                U,
                3,
                14,
                "manager cycle: a@acme.example → b@acme.example → c@acme.example → a@acme.example",
            )
        ],
    ),
    (
        "wrong type of custom attribute",
        {U: "users:\n  - userName: a@acme.example\n    attributes: {level: high}\n"},
        [(U, 3, 25, "level must be an integer, not str 'high'")],
    ),
    (
        "wrong type of core attribute",
        {U: "users:\n  - userName: a@acme.example\n    active: maybe\n"},
        [(U, 3, 13, "active: Input should be a valid boolean, unable to interpret input")],
    ),
    (
        "disallowed value",
        {U: "users:\n  - userName: a@acme.example\n    attributes: {department: Legal}\n"},
        [(U, 3, 30, "department: 'Legal' is not an allowed value")],
    ),
    (
        "required attribute missing",
        {
            "attributes.yaml": "attributes:\n  - name: costCenter\n    required: true\n",
            U: "users:\n  - userName: a@acme.example\n",
        },
        [(U, 2, 15, "user 'a@acme.example' lacks required attribute 'costCenter'")],
    ),
    (
        "duplicate userName, case-insensitive",
        {U: "users:\n  - userName: a@acme.example\n  - userName: A@ACME.example\n"},
        [(U, 3, 15, f"duplicate userName 'A@ACME.example' (first declared at {{root}}/{U}:2)")],
    ),
    (
        "duplicate externalId",
        {
            U: "users:\n  - userName: a@acme.example\n    externalId: '7'\n"
            "  - userName: b@acme.example\n    externalId: '7'\n"
        },
        [(U, 5, 17, f"duplicate externalId '7' (first declared at {{root}}/{U}:3)")],
    ),
    (
        "duplicate rule priority",
        {
            "rules.yaml": BASE["rules.yaml"] + "  - name: Support\n    priority: 10\n"
            "    match: {groups_any: [Support]}\n    grants: {role: agent}\n"
        },
        [
            (
                "rules.yaml",
                7,
                15,
                "duplicate rule priority 10 (first declared at {root}/rules.yaml:3)",
            )
        ],
    ),
    (
        "email outside the verified domains",
        {U: "users:\n  - userName: a@acme.example\n    emails: [a@gmail.com]\n"},
        [(U, 3, 14, "email 'a@gmail.com' is outside the verified domains")],
    ),
    (
        "literal secret",
        {"tenant.yaml": "url: https://x.example\nauth:\n  type: bearer\n  token: s3cr3t\n"},
        [
            ("tenant.yaml", 2, 1, "auth type 'bearer' needs token_env"),
            ("tenant.yaml", 4, 3, "a literal secret ('token') is not allowed in tenant.yaml"),
        ],
    ),
    (
        "secret value in an _env field",
        {"tenant.yaml": "url: https://x.example\nauth: {type: bearer, token_env: 'ey.J hbG'}\n"},
        [
            (
                "tenant.yaml",
                2,
                33,
                "'token_env' must name an environment variable, such as SCIM_TOKEN",
            )
        ],
    ),
    (
        "unknown key",
        {U: "users:\n  - userName: a@acme.example\n    titel: CEO\n"},
        [(U, 3, 5, "unknown key 'titel'")],
    ),
    (
        "missing key",
        {U: "users:\n  - displayName: Anon\n"},
        [(U, 2, 5, "missing required key 'userName'")],
    ),
    (
        "invalid YAML syntax",
        {U: "users:\n  - userName: a@acme.example\n   groups: [Sales\n"},
        [(U, 3, 4, "did not find expected '-' indicator")],
    ),
    (
        "duplicate key",
        {U: "users:\n  - userName: a@acme.example\n    userName: b@acme.example\n"},
        [(U, 3, 5, "duplicate key 'userName'")],
    ),
    (
        "binary file",
        {U: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
        [(U, 0, 0, "this is a binary file, not YAML")],
    ),
    (
        "alias bomb",
        {U: "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"},
        [(U, 1, 4, "YAML anchors and aliases (&name, *name) are not accepted")],
    ),
    (
        "unknown section",
        {U: "user:\n  - userName: a@acme.example\n"},
        [(U, 1, 1, "unknown section 'user'")],
    ),
    (
        "unknown group in a rule",
        {
            "rules.yaml": "rules:\n  - name: X\n    priority: 1\n"
            "    match: {groups_any: [Nope]}\n    grants: {role: r}\n"
        },
        [("rules.yaml", 4, 26, "rule 'X' refers to unknown group 'Nope'")],
    ),
    (
        "membership declared twice",
        {
            "groups/groups.yaml": "groups:\n  - displayName: Sales\n"
            "    members: [ok@acme.example]\n  - displayName: Support\n",
        },
        [
            (
                U,
                3,
                14,
                "membership of 'ok@acme.example' in 'Sales' is declared twice: here and in the "
                "group's members (first declared at {root}/groups/groups.yaml:3)",
            )
        ],
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_class(
    tmp_path: Path,
    files: dict[str, str | bytes | None],
    expected: list[tuple[str, int, int, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "state", files)
    result = load(Path("state"))
    errors = [
        (d.file, d.line, d.col, d.message)
        for d in result.diagnostics
        if d.severity is Severity.error
    ]
    want = [(f"state/{f}", ln, c, m.format(root="state")) for f, ln, c, m in expected]
    assert errors == want
    assert not result.ok
    for d in result.diagnostics:
        assert d.hint, f"every error says what to write instead: {d}"
        assert "s3cr3t" not in d.message + d.hint


def test_base_is_valid(tmp_path: Path) -> None:
    result = load(write(tmp_path, {}))
    assert result.ok, result.diagnostics
    assert result.state is not None and len(result.state.users) == 1


def test_all_errors_at_once(tmp_path: Path) -> None:
    """Problems in several files are all reported in one run, sorted by place."""
    files: dict[str, str | bytes | None] = {}
    for _, f, _ in CASES[:6]:
        for rel, content in f.items():
            files.setdefault(rel.replace("users.yaml", f"u{len(files)}.yaml"), content)
    result = load(write(tmp_path, files))
    assert len({d.file for d in result.diagnostics}) >= 5
    assert result.diagnostics == sorted(
        result.diagnostics, key=lambda d: (d.file, d.line, d.col, d.message)
    )


def test_no_tenant_yaml(tmp_path: Path) -> None:
    (tmp_path / "users.yaml").write_text("users: []\n")
    result = load(tmp_path)
    assert not result.ok
    assert [d.message for d in result.diagnostics] == ["no tenant.yaml in this directory"]


def test_empty_file_is_a_warning(tmp_path: Path) -> None:
    result = load(write(tmp_path, {"users/empty.yaml": "# nothing yet\n"}))
    assert result.ok
    assert [(d.severity, d.message) for d in result.diagnostics] == [
        (Severity.warning, "the file is empty")
    ]


def test_empty_tenant_is_an_error(tmp_path: Path) -> None:
    result = load(write(tmp_path, {"tenant.yaml": ""}))
    assert [d.message for d in result.diagnostics] == ["tenant.yaml is empty"]


def test_ampersand_in_text_is_not_an_anchor(tmp_path: Path) -> None:
    users = "users:\n  - userName: a@acme.example\n    title: 'R&D * Ops & *Tools'\n"
    assert load(write(tmp_path, {U: users})).ok


def test_a_broken_item_does_not_cascade(tmp_path: Path) -> None:
    """One bad user is reported once; the good ones still resolve their references."""
    groups = "groups:\n  - displayName: Sales\n    members: [a@acme.example]\n"
    users = "users:\n  - userName: a@acme.example\n  - userName: b@acme.example\n    bad: 1\n"
    result = load(write(tmp_path, {"groups/groups.yaml": groups, U: users}))
    assert [d.message for d in result.diagnostics] == ["unknown key 'bad'"]


def test_an_unreadable_file_does_not_flood_with_unknown_references(tmp_path: Path) -> None:
    groups = "groups:\n  - displayName: Sales\n   broken: [\n"
    users = "".join(f"  - userName: u{i}@acme.example\n    groups: [Sales]\n" for i in range(20))
    result = load(write(tmp_path, {"groups/groups.yaml": groups, U: "users:\n" + users}))
    messages = [d.message for d in result.diagnostics]
    assert not any("unknown group" in m for m in messages)
    assert "references to groups, users and attributes were not checked" in messages
    assert len(messages) == 2
