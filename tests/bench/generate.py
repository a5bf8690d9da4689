"""Deterministic generator of realistic desired states of any size.

    generate(Path("/tmp/state"), users=100_000, groups=2_000, rules=50)

writes tenant.yaml, attributes.yaml, rules.yaml, groups/*.yaml and users/<department>-<n>.yaml
(at most ``per_file`` users a file). The same arguments always write the same bytes. The result
validates: every reference resolves, every value has its declared type.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

FIRST = (
    "Ada Alan Alice Amara Anders Aniko Arjun Astrid Beatriz Ben Bilal Camille Carlos Chen Chiara "
    "Dana Daniel Deepa Diego Dmitri Elena Emeka Emma Erik Fatima Felix Fiona Gabriel Grace Hana "
    "Hassan Ingrid Isabel Ivan Jamal Jana Javier Jin Johan Julia Kai Kamala Karin Kenji Lara Leo "
    "Liam Lina Lucia Magnus Maria Mateo Maya Mei Mohammed Nadia Nils Noor Olga Omar Paula Pedro "
    "Priya Rafael Rania Ravi Rosa Sam Sara Sofia Sven Tariq Tomas Uma Valentina Victor Wei Yara "
    "Yusuf Zainab Zoe"
).split()
LAST = (
    "Abe Adeyemi Ahmed Andersson Bauer Becker Bianchi Castro Chen Costa Dubois Eriksson Fischer "
    "Garcia Gonzalez Hansen Hoffmann Ivanova Jensen Kahn Kim Kowalski Larsen Lee Lopez Martin "
    "Meyer Moreau Muller Nakamura Nguyen Novak Okafor Olsen Park Patel Perez Petrov Rossi Sato "
    "Schmidt Schneider Silva Singh Smith Suzuki Tanaka Van-Dijk Wagner Wang Weber Wilson Yamamoto "
    "Zhang"
).split()
DEPARTMENTS = (
    "Sales",
    "Support",
    "Engineering",
    "Marketing",
    "Finance",
    "People",
    "Operations",
    "Legal",
)
TITLES = ("Associate", "Specialist", "Senior Specialist", "Lead", "Manager", "Director")
PRODUCTS = ("GoTo Meeting", "GoTo Webinar", "GoTo Connect", "GoTo Resolve", "GoTo Training")
ROLES = ("member", "manager", "admin", "super-admin")
DOMAIN = "example.com"


@dataclass(frozen=True)
class Generated:
    root: Path
    users: int
    groups: int
    rules: int
    files: int


def _q(s: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _group_names(n: int) -> list[str]:
    names = [f"dept-{d.lower()}" for d in DEPARTMENTS]
    i = 0
    while len(names) < n:
        names.append(
            f"team-{DEPARTMENTS[i % len(DEPARTMENTS)].lower()}-{i // len(DEPARTMENTS):04d}"
        )
        i += 1
    return names[:n]


def generate(
    root: Path,
    *,
    users: int,
    groups: int,
    rules: int,
    seed: int = 0,
    per_file: int = 1000,
    url: str = "local:.reconciler/bench.db",
) -> Generated:
    rng = random.Random(seed)
    groups = max(groups, len(DEPARTMENTS))
    root.mkdir(parents=True, exist_ok=True)
    (root / "users").mkdir(exist_ok=True)
    (root / "groups").mkdir(exist_ok=True)
    (root / "tenant.yaml").write_text(
        f"url: {url}\nprofile: goto\nverified_domains: [{DOMAIN}]\n"
        "lifecycle:\n  removed_users: suspend\n  delete_after: 21d\n",
        encoding="utf-8",
    )
    (root / "attributes.yaml").write_text(
        "attributes:\n"
        "  - name: employeeNumber\n  - name: costCenter\n  - name: division\n"
        "  - name: department\n"
        f"    allowed_values: [{', '.join(DEPARTMENTS)}]\n"
        "  - name: employmentType\n    allowed_values: [employee, contractor]\n"
        "    scim: {schema: 'urn:example:params:scim:schemas:extension:acme:1.0:User'}\n",
        encoding="utf-8",
    )
    names = _group_names(groups)
    by_dept: dict[str, list[str]] = {d: [] for d in DEPARTMENTS}
    for name in names:
        for d in DEPARTMENTS:
            if f"-{d.lower()}" in name:
                by_dept[d].append(name)
                break
    lines = ["groups:"]
    for i, name in enumerate(names):
        lines += [f"  - displayName: {name}", f"    externalId: g{i:05d}"]
    (root / "groups" / "groups.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    lines = ["rules:"]
    for p in range(1, rules + 1):
        g = names[(p * 7919) % len(names)]
        lines += [
            f"  - name: Rule {p:03d} {g}",
            f"    priority: {p * 10}",
            "    match:",
            f"      groups_any: [{g}]",
            "    grants:",
            f"      role: {ROLES[p % len(ROLES)]}",
            f"      products: [{_q(PRODUCTS[p % len(PRODUCTS)])}]",
            f"      userGroup: ug-{p % 12}",
            f"      deviceGroups: [dg-{p % 5}]",
        ]
    (root / "rules.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    files = 4
    buf: list[str] = []
    count_in_file = 0
    file_no = 0

    def flush() -> None:
        nonlocal buf, count_in_file, file_no, files
        if buf:
            path = root / "users" / f"users-{file_no:04d}.yaml"
            path.write_text("users:\n" + "\n".join(buf) + "\n", encoding="utf-8")
            files += 1
            file_no += 1
        buf, count_in_file = [], 0

    usernames: list[str] = []
    for i in range(users):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        user = f"{first.lower()}.{last.lower()}.{i}@{DOMAIN}"
        usernames.append(user)
        dept = DEPARTMENTS[rng.randrange(len(DEPARTMENTS))]
        my_groups = {f"dept-{dept.lower()}"}
        for _ in range(rng.randrange(0, 3)):
            my_groups.add(rng.choice(by_dept[dept]))
        buf += [
            f"  - userName: {user}",
            f"    externalId: e{i:07d}",
            f"    name: {{givenName: {first}, familyName: {last}}}",
            f"    displayName: {first} {last}",
            f"    title: {rng.choice(TITLES)}",
            f"    emails: [{user}]",
            f"    groups: [{', '.join(sorted(my_groups))}]",
            "    attributes:",
            f"      employeeNumber: {_q(f'{i:07d}')}",
            f"      costCenter: CC-{rng.randrange(100, 999)}",
            f"      department: {dept}",
            f"      employmentType: {'contractor' if rng.random() < 0.08 else 'employee'}",
        ]
        if i > 10 and rng.random() < 0.7:
            # Managers are always earlier users, so reporting lines never form a cycle.
            buf.append(f"    manager: {usernames[rng.randrange(0, min(i, 1 + i // 10))]}")
        count_in_file += 1
        if count_in_file >= per_file:
            flush()
    flush()
    return Generated(root, users, groups, rules, files)
