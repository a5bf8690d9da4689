"""Every error class of `reconciler validate`, with its exact position and message."""

from __future__ import annotations

import subprocess
import sys
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
        # Meant as "basically never": a date that far out overflowed in the plan, a traceback.
        "a grace period too long to be a date",
        {"tenant.yaml": "url: local:tenant.db\nlifecycle: {delete_after: 3000000d}\n"},
        [("tenant.yaml", 2, 27, "a grace period longer than 100 years")],
    ),
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
        [(U, 3, 13, "active must be true or false, not str 'maybe'")],
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
        [
            (
                U,
                3,
                4,
                "did not find expected '-' indicator "
                "(while parsing a block collection that began at 2:3)",
            )
        ],
    ),
    (
        "duplicate key",
        {U: "users:\n  - userName: a@acme.example\n    userName: b@acme.example\n"},
        [(U, 3, 5, f"duplicate key 'userName' (first declared at {{root}}/{U}:2)")],
    ),
    (
        "duplicate key: the rest of the file is still checked",
        {
            U: "users:\n"
            "  - userName: a@acme.example\n"
            "    title: VP\n"
            "    title: CEO\n"
            "    externalId: 09101\n"
            "    groups: Sales\n"
            "    emails: {work: a@acme.example}\n"
            "    manager: nobody@acme.example\n"
            "  - UserName: b@acme.example\n"
            "  - userName: A@acme.example\n"
        },
        [
            (U, 4, 5, f"duplicate key 'title' (first declared at {{root}}/{U}:3)"),
            (U, 5, 17, "externalId must be a string, not int 9101"),
            (U, 6, 13, "groups must be a list, not str 'Sales'"),
            (U, 7, 5, "emails must be a list, not a mapping"),
            (U, 8, 14, "unknown manager 'nobody@acme.example'"),
            (U, 9, 5, "missing required key 'userName'"),
            (U, 9, 5, "unknown key 'UserName'"),
            (U, 10, 15, f"duplicate userName 'A@acme.example' (first declared at {{root}}/{U}:2)"),
        ],
    ),
    (
        "duplicate key: each one is reported, in flow mappings and in tenant.yaml too",
        {
            "tenant.yaml": "url: local:tenant.db\nurl: local:other.db\n"
            "verified_domains: [acme.example]\n",
            U: "users:\n  - {userName: a@acme.example, title: A, title: B, title: C}\n",
        },
        [
            ("tenant.yaml", 2, 1, "duplicate key 'url' (first declared at {root}/tenant.yaml:1)"),
            (U, 2, 42, f"duplicate key 'title' (first declared at {{root}}/{U}:2)"),
            (U, 2, 52, f"duplicate key 'title' (first declared at {{root}}/{U}:2)"),
        ],
    ),
    (
        "duplicate key: the name left out is not also unknown where it is referred to",
        {
            U: "users:\n  - userName: a@acme.example\n    userName: b@acme.example\n"
            "  - userName: c@acme.example\n    manager: b@acme.example\n",
            "groups/groups.yaml": "groups:\n  - displayName: Sales\n  - displayName: Support\n"
            "groups:\n  - displayName: Ops\n    members: [b@acme.example]\n",
            "users/more.yaml": "users:\n  - userName: d@acme.example\n    groups: [Ops]\n",
        },
        [
            (
                "groups/groups.yaml",
                4,
                1,
                "duplicate key 'groups' (first declared at {root}/groups/groups.yaml:1)",
            ),
            (U, 3, 5, f"duplicate key 'userName' (first declared at {{root}}/{U}:2)"),
        ],
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
        "unknown section: its entries are not also unknown where they are referred to",
        {
            U: "user:\n  - userName: boss@acme.example\n  - usrName: deputy@acme.example\n",
            "users/more.yaml": "users:\n"
            "  - userName: a@acme.example\n    manager: boss@acme.example\n"
            "  - userName: b@acme.example\n    manager: Deputy@acme.example\n"
            "  - userName: c@acme.example\n    manager: nobody@acme.example\n",
            "groups/groups.yaml": "groups:\n  - displayName: Sales\n  - displayName: Support\n"
            "  - displayName: Ops\n    members: [boss@acme.example]\n",
        },
        [
            ("users/more.yaml", 7, 14, "unknown manager 'nobody@acme.example'"),
            (U, 1, 1, "unknown section 'user'"),
        ],
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
        "wrong type: a string instead of a list",
        {U: "users:\n  - userName: a@acme.example\n    groups: Sales\n"},
        [(U, 3, 13, "groups must be a list, not str 'Sales'")],
    ),
    (
        "wrong type: a list instead of a string",
        {U: "users:\n  - userName: [a@acme.example]\n"},
        [(U, 2, 5, "userName must be a string, not a list")],
    ),
    (
        "wrong type: a number instead of a string",
        {U: "users:\n  - userName: a@acme.example\n    externalId: 7\n"},
        [(U, 3, 17, "externalId must be a string, not int 7")],
    ),
    (
        "wrong type: a scalar instead of a mapping",
        {U: "users:\n  - userName: a@acme.example\n    name: Bob\n"},
        [(U, 3, 11, "name must be a mapping, not str 'Bob'")],
    ),
    (
        "wrong type: an entry that is not a mapping",
        {U: "users:\n  - a@acme.example\n"},
        [(U, 2, 5, "users[0] must be a mapping, not str 'a@acme.example'")],
    ),
    (
        "wrong type: a fraction for a whole number",
        {"rules.yaml": BASE["rules.yaml"].replace("priority: 10", "priority: 1.5")},
        [("rules.yaml", 3, 15, "priority must be a whole number, not float 1.5")],
    ),
    (
        "out of range",
        {"rules.yaml": BASE["rules.yaml"].replace("priority: 10", "priority: 0")},
        [("rules.yaml", 3, 15, "priority must be at least 1, not 0")],
    ),
    (
        "empty value",
        {U: "users:\n  - userName: ''\n"},
        [(U, 2, 15, "userName cannot be empty")],
    ),
    (
        "null value",
        {U: "users:\n  - userName:\n"},
        [(U, 2, 5, "userName is empty")],
    ),
    (
        "disallowed enum value",
        {"tenant.yaml": "url: local:tenant.db\nprofile: okta\n"},
        [
            (
                "tenant.yaml",
                2,
                10,
                "profile must be one of 'generic', 'goto' or 'genesys', not 'okta'",
            )
        ],
    ),
    (
        "not a whole list of values",
        {"attributes.yaml": "attributes:\n  - name: level\n    allowed_values: [[a]]\n"},
        [
            (
                "attributes.yaml",
                3,
                22,
                "allowed_values[0] must be a single value (text, number, true or false), "
                "not a list",
            )
        ],
    ),
    (
        "a key that is not a string",
        {U: "users:\n  - userName: a@acme.example\n    7: x\n"},
        [(U, 3, 5, "key 7 must be a string")],
    ),
    (
        "not an email address",
        {U: "users:\n  - userName: a@acme.example\n    emails: [nobody]\n"},
        [(U, 3, 14, "not an email address: 'nobody'")],
    ),
    (
        "invalid attribute name",
        {"attributes.yaml": "attributes:\n  - name: 9lives\n"},
        [("attributes.yaml", 2, 11, "'9lives' is not a valid name")],
    ),
    (
        "group listed twice on a user",
        {U: "users:\n  - userName: a@acme.example\n    groups: [Sales, sales]\n"},
        [
            (
                U,
                3,
                21,
                f"group 'sales' is listed twice for this user (first declared at {{root}}/{U}:3)",
            )
        ],
    ),
    (
        "member listed twice on a group",
        {
            "groups/groups.yaml": "groups:\n  - displayName: Support\n"
            "    members: [ok@acme.example, OK@acme.example]\n  - displayName: Sales\n"
        },
        [
            (
                "groups/groups.yaml",
                3,
                32,
                "member 'OK@acme.example' is listed twice in group 'Support' "
                "(first declared at {root}/groups/groups.yaml:3)",
            )
        ],
    ),
    (
        "invalid YAML: unclosed quote",
        {U: 'users:\n  - userName: "a@acme.example\n'},
        [
            (
                U,
                2,
                15,
                "a quoted value is not closed: YAML read on to the end of the file "
                "(found unexpected end of stream)",
            )
        ],
    ),
    (
        "invalid YAML: a double quote not closed on its line runs on to the next one",
        {
            U: 'users:\n  - userName: a@acme.example\n    title: "VP Sales\n'
            '    emails: [a@acme.example]\n    phoneNumbers: [{value: "+1 555 0101"}]\n'
        },
        [
            (
                U,
                3,
                12,
                "a double-quoted value is not closed on its line: YAML read on to the next "
                "'\"', and then found: did not find expected key (at 5:29)",
            )
        ],
    ),
    (
        "an unquoted value with a quote inside is not taken for an opening quote",
        {U: 'users:\n  - userName: a@acme.example\n    title: Say "hi\n    displayName: [x\n'},
        [
            (
                U,
                5,
                1,
                "did not find expected ',' or ']' "
                "(while parsing a flow sequence that began at 4:18)",
            )
        ],
    ),
    (
        "invalid YAML: a tab",
        {U: "users:\n  - userName: a@acme.example\n\tgroups: [Sales]\n"},
        [(U, 3, 1, "a tab character: YAML indents with spaces only")],
    ),
    (
        "invalid YAML: a colon in a plain value",
        {U: "users:\n  - userName: a@acme.example\n    title: Head: Sales\n"},
        [(U, 3, 16, "mapping values are not allowed in this context")],
    ),
    (
        "invalid YAML: a tag",
        {U: "users:\n  - userName: !!python/object:os.system a\n"},
        [(U, 2, 15, "the YAML tag '!!python/object:os.system' is not accepted")],
    ),
    (
        "merge key",
        {U: "users:\n  - userName: a@acme.example\n    <<: {title: CEO}\n"},
        [(U, 3, 5, "YAML merge keys (<<) are not accepted")],
    ),
    (
        "more than one document",
        {U: "users: []\n---\ngroups: []\n"},
        [(U, 2, 1, "more than one YAML document in this file")],
    ),
    (
        "not UTF-8",
        {U: b"users:\n  - userName: caf\xe9@acme.example\n"},
        [(U, 2, 18, "not valid UTF-8 (byte 0xe9)")],
    ),
    (
        "UTF-16",
        {U: "users: []\n".encode("utf-16")},
        [(U, 0, 0, "this file is saved as UTF-16, not UTF-8")],
    ),
    (
        "a file that is not a mapping",
        {U: "- a\n- b\n"},
        [(U, 1, 1, "a desired-state file must be a mapping")],
    ),
    (
        "a section that is not a list",
        {U: "users: {userName: a@acme.example}\n"},
        [(U, 1, 1, "'users' must be a list")],
    ),
    (
        "secret in the tenant URL",
        {"tenant.yaml": "url: https://admin:s3cr3t@x.example/scim\n"},
        [("tenant.yaml", 1, 6, "the tenant URL carries credentials (user:password@)")],
    ),
    (
        "token in the tenant URL's query string",
        {"tenant.yaml": "url: https://x.example/scim/v2?access_token=s3cr3t\n"},
        [("tenant.yaml", 1, 6, "the tenant URL has a query string, fragment or ;parameters")],
    ),
    (
        "wrong type of a secret setting does not echo it",
        {"tenant.yaml": "url: https://x.example\nauth: {type: bearer, token_env: [s3cr3t]}\n"},
        [("tenant.yaml", 2, 22, "auth.token_env must be a string, not a list")],
    ),
    (
        "nesting too deep (the C parser would overflow its stack)",
        {U: "users:\n  - userName: a@acme.example\n    title: " + "[" * 100_000 + "]" * 100_000},
        [(U, 3, 73, "the YAML nests deeper than 64 levels")],
    ),
    (
        "block nesting too deep",
        {U: "users:\n" + "".join(" " * i + "- \n" for i in range(2, 200, 2))},
        [(U, 65, 129, "the YAML nests deeper than 64 levels")],
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


def test_only_real_yaml_booleans_are_booleans(tmp_path: Path) -> None:
    """YAML 1.2 reads yes/no/on/off as text; pydantic's lax mode read them (and "true", 1, 0)
    as booleans, so `active: off` suspended a user by accident. Every boolean field of the
    models takes true or false only, each wrong one reported at its place, all in one run."""
    files: dict[str, str | bytes | None] = {
        "attributes.yaml": (
            "attributes:\n"
            "  - name: costCenter\n"
            "    sensitive: yes\n"
            "    multi_valued: 'false'\n"
            "  - name: level\n"
            "    type: integer\n"
            "    required: 0\n"
            "    case_exact: True\n"  # a real YAML 1.2 boolean
        ),
        U: (
            "users:\n"
            "  - userName: a@acme.example\n"
            '    active: "yes"\n'
            "  - userName: b@acme.example\n"
            "    active: off\n"
            "  - userName: c@acme.example\n"
            "    active: 1\n"
            "    emails: [{value: c@acme.example, primary: 'true'}]\n"
            "    phoneNumbers: [{value: '+1 555 0100', primary: on}]\n"
            "  - userName: d@acme.example\n"
            "    active: false\n"
            "    emails: [{value: d@acme.example, primary: true}]\n"
        ),
    }
    write(tmp_path / "state", files)
    r = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "state"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    unquote = "write true or false, unquoted (YAML reads yes, no, on and off as text)"
    assert r.stdout.splitlines() == [
        "state/attributes.yaml:3:16: error: sensitive must be true or false, not str 'yes'",
        f"    hint: {unquote}",
        "state/attributes.yaml:4:19: error: multi_valued must be true or false, not str 'false'",
        f"    hint: {unquote}",
        "state/attributes.yaml:7:15: error: required must be true or false, not int 0",
        "    hint: write true or false",
        f"state/{U}:3:13: error: active must be true or false, not str 'yes'",
        f"    hint: {unquote}",
        f"state/{U}:5:13: error: active must be true or false, not str 'off'",
        f"    hint: {unquote}",
        f"state/{U}:7:13: error: active must be true or false, not int 1",
        "    hint: write true or false",
        f"state/{U}:8:47: error: emails[0].primary must be true or false, not str 'true'",
        f"    hint: {unquote}",
        f"state/{U}:9:52: error: phoneNumbers[0].primary must be true or false, not str 'on'",
        f"    hint: {unquote}",
        "invalid: 8 errors, 0 warnings",
    ]
    # Written as real booleans, the same files load, as booleans.
    fixed: dict[str, str | bytes | None] = {}
    for rel, bad, good in (
        ("attributes.yaml", "sensitive: yes", "sensitive: true"),
        ("attributes.yaml", "'false'", "false"),
        ("attributes.yaml", "required: 0", "required: false"),
        (U, '"yes"', "true"),
        (U, "active: off", "active: false"),
        (U, "active: 1", "active: true"),
        (U, "'true'", "true"),
        (U, "primary: on", "primary: false"),
    ):
        fixed[rel] = str(fixed.get(rel) or files[rel]).replace(bad, good)
    result = load(write(tmp_path / "fixed", fixed))
    assert result.ok, result.diagnostics
    assert result.state is not None
    assert [u.active for u in result.state.users] == [True, False, True, False]
    assert [a.case_exact for a in result.state.attributes] == [False, True]


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


def test_a_broken_item_is_not_also_reported_as_unknown_where_it_is_referred_to(
    tmp_path: Path,
) -> None:
    """A typo in a user, group or attribute that others refer to is one error, not one per
    reference (its manager, members, groups, rule conditions still name it)."""
    attributes = BASE["attributes.yaml"] + "  - name: region\n    typo: 1\n"
    groups = "groups:\n  - displayName: Sales\n    members: [boss@acme.example]\n"
    groups += "  - displayName: Support\n  - displayName: Ops\n    colour: red\n"
    rules = BASE["rules.yaml"] + (
        "  - name: Ops\n    priority: 20\n"
        "    match: {groups_any: [Ops], conditions: [{attribute: region, op: exists}]}\n"
        "    grants: {products: [GoTo Resolve]}\n"
    )
    users = "users:\n  - userName: boss@acme.example\n    titel: Boss\n"
    users += "  - usrName: deputy@acme.example\n"  # the name itself under a misspelt key
    users += "  - userName: d2@acme.example\n    manager: deputy@acme.example\n"
    users += "".join(
        f"  - userName: u{i}@acme.example\n    manager: boss@acme.example\n    groups: [Ops]\n"
        for i in range(3)
    )
    result = load(
        write(
            tmp_path,
            {
                "attributes.yaml": attributes,
                "groups/groups.yaml": groups,
                "rules.yaml": rules,
                U: users,
            },
        )
    )
    assert sorted(d.message for d in result.diagnostics) == [
        "missing required key 'userName'",
        "unknown key 'colour'",
        "unknown key 'titel'",
        "unknown key 'typo'",
        "unknown key 'usrName'",
    ]


def test_an_unreadable_file_does_not_flood_with_unknown_references(tmp_path: Path) -> None:
    groups = "groups:\n  - displayName: Sales\n   broken: [\n"
    users = "".join(f"  - userName: u{i}@acme.example\n    groups: [Sales]\n" for i in range(20))
    result = load(write(tmp_path, {"groups/groups.yaml": groups, U: "users:\n" + users}))
    messages = [d.message for d in result.diagnostics]
    assert not any("unknown group" in m for m in messages)
    assert (
        "references to groups, users and attributes were not checked: this file could not be "
        "read, and may declare some of them"
    ) in messages
    assert len(messages) == 2


# A file that exists but cannot be read, even by root: reading /proc/self/mem from offset 0
# fails with EIO. A real OS error, no monkeypatching.
UNREADABLE = Path("/proc/self/mem")
needs_proc = pytest.mark.skipif(not UNREADABLE.exists(), reason="needs Linux /proc")


@needs_proc
def test_an_unreadable_file_is_reported_without_cascading(tmp_path: Path) -> None:
    root = write(tmp_path / "state", {})
    (root / "groups" / "groups.yaml").unlink()
    (root / "groups" / "groups.yaml").symlink_to(UNREADABLE)
    result = load(root)
    assert [(d.severity, d.line, d.message) for d in result.diagnostics] == [
        (Severity.error, 0, "cannot read: Input/output error"),
        (
            Severity.warning,
            0,
            "references to groups, users and attributes were not checked: this file could not "
            "be read, and may declare some of them",
        ),
    ]
    assert not result.ok


@needs_proc
def test_an_unreadable_tenant_yaml_is_not_called_missing(tmp_path: Path) -> None:
    root = write(tmp_path / "state", {"tenant.yaml": None})
    (root / "tenant.yaml").symlink_to(UNREADABLE)
    result = load(root)
    assert [d.message for d in result.diagnostics] == ["cannot read: Input/output error"]
    assert result.state is None


def test_a_broken_link_is_reported_not_skipped(tmp_path: Path) -> None:
    root = write(tmp_path / "state", {})
    (root / "users" / "more.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = load(root)
    assert [(d.file.endswith("more.yaml"), d.severity, d.hint) for d in result.diagnostics] == [
        (True, Severity.error, "point the link at a file, or remove it"),
        (
            True,
            Severity.warning,
            "fix the errors reported for the unreadable files, then validate again",
        ),
    ]
    assert result.diagnostics[0].message == (
        "cannot read: a symbolic link to a file that does not exist"
    )


def test_no_such_directory(tmp_path: Path) -> None:
    result = load(tmp_path / "nope")
    assert [(d.message, d.hint) for d in result.diagnostics] == [
        (
            "no such directory",
            "pass the desired-state directory, e.g. reconciler validate desired-state",
        )
    ]


def test_a_file_instead_of_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "state", {})
    result = load(Path("state/tenant.yaml"))
    assert [(d.message, d.hint) for d in result.diagnostics] == [
        (
            "this is a file; validate takes the directory that holds tenant.yaml",
            "reconciler validate state",
        )
    ]


def test_every_error_has_a_hint_and_no_pydantic_jargon(tmp_path: Path) -> None:
    """Wrong types everywhere: each gets a message in words and says what to write instead."""
    users = (
        "users:\n"
        "  - userName: 12\n    externalId: 5\n    name: Bob\n    emails: bob@acme.example\n"
        "    phoneNumbers: [123]\n    active: maybe\n    groups: Sales\n    attributes: [a]\n"
        "    manager: {x: 1}\n"
        "  - just a string\n"
        "  - null\n"
        "  - userName: c@acme.example\n    name: {givenName: [C]}\n    7: x\n"
        "    employmentType: contractor\n"
    )
    rules = (
        "rules:\n  - name: r\n    priority: high\n"
        "    match: {groups_any: Sales, conditions: [{attribute: department, op: like}]}\n"
        "    grants: {products: GoTo Meeting, role: [a]}\n"
    )
    attributes = (
        "attributes:\n  - name: 9x\n    type: text\n    multi_valued: sometimes\n"
        "    allowed_values: [[a], {b: 1}]\n    scim: {schema: foo}\n"
    )
    result = load(write(tmp_path, {U: users, "rules.yaml": rules, "attributes.yaml": attributes}))
    errors = [d for d in result.diagnostics if d.severity is Severity.error]
    assert len(errors) == 25, "\n".join(d.message for d in errors)
    for d in errors:
        assert d.line > 0 and d.hint, d
        for jargon in ("Input should be a valid", "instance of", "String should", "[key]"):
            assert jargon not in d.message, d
    messages = {d.message for d in errors}
    assert "unknown key 'employmentType'" in messages
    assert "unknown schema 'foo'" in messages
    hint = next(d.hint for d in errors if d.message == "unknown key 'employmentType'")
    assert hint.startswith("custom attributes go under 'attributes:'")


def test_a_typo_in_a_declaration_does_not_hide_the_errors_it_would_find(tmp_path: Path) -> None:
    """All errors at once: a bad tenant.yaml setting still leaves its verified domains to
    check emails, and a misspelt key on an attribute still leaves its type to check values."""
    files: dict[str, str | bytes | None] = {
        "tenant.yaml": "url: local:tenant.db\nprofile: gotoo\nverified_domains: [acme.example]\n",
        "attributes.yaml": "attributes:\n  - name: level\n    type: integer\n    typo_key: 1\n",
        U: "users:\n  - userName: a@acme.example\n    emails: [a@evil.example]\n"
        "    attributes: {level: high}\n",
    }
    result = load(write(tmp_path, files))
    messages = sorted(d.message for d in result.diagnostics)
    assert len(messages) == 4, messages
    assert "unknown key 'typo_key'" in messages
    assert "profile must be one of 'generic', 'goto' or 'genesys', not 'gotoo'" in messages
    assert "email 'a@evil.example' is outside the verified domains" in messages
    assert any("level" in m and "integer" in m for m in messages), messages
    assert not result.ok
    # Even a bad url (required) leaves the other settings to check with.
    files["tenant.yaml"] = "url: nope\nverified_domains: [acme.example]\n"
    messages = [d.message for d in load(write(tmp_path, files)).diagnostics]
    assert "email 'a@evil.example' is outside the verified domains" in messages, messages


def test_a_did_you_mean_never_suggests_a_name_listed_beside_it(tmp_path: Path) -> None:
    """A group left in a user's list after it was removed from groups/ (or a typo beside the
    right name) is not answered with a group the user is in already: that would make a
    duplicate. The close name is said to be listed here already."""
    groups = "groups:\n  - displayName: Sales\n  - displayName: Sales EMEA\n"
    files: dict[str, str | bytes | None] = {
        "groups/groups.yaml": groups + "    members: [a@acme.example, a@acme.exampl]\n",
        "users/users.yaml": (
            "users:\n  - userName: a@acme.example\n    groups: [Sales, Sales EMA, Sale]\n"
            "  - userName: b@acme.example\n    groups: [Sale]\n"
        ),
    }
    result = load(write(tmp_path, files))
    assert [(d.line, d.col, d.message, d.hint) for d in result.diagnostics] == [
        (
            4,
            31,
            "group 'Sales EMEA' lists unknown member 'a@acme.exampl'",
            "'a@acme.example' is listed here already: remove this entry, or declare the user "
            "in users/*.yaml first (members are userNames)",
        ),
        (
            3,
            21,
            "unknown group 'Sales EMA'",
            "did you mean 'Sales EMEA'? declare it in groups/*.yaml first",
        ),
        (
            3,
            32,
            "unknown group 'Sale'",
            "'Sales' is listed here already: remove this entry, or declare it in groups/*.yaml "
            "first",
        ),
        (5, 14, "unknown group 'Sale'", "did you mean 'Sales'? declare it in groups/*.yaml first"),
    ]
