"""The plan core, policies, and a whole `reconciler plan`, at 100,000 users / 2,000 groups / 50
rules with 1% of users changed.

Goals: the pure core (matching, rules, diff, ordering) takes at most 1.5x the time of json.loads
of the live pages it compares (issue: plan); the sample policies add at most 50% to the plan's
time (issue: policies). Also printed: the whole `reconciler plan` wall time and peak memory.

The machine this runs on is often shared, so in-process figures are CPU time (process_time),
the best of three runs of each side. The core's ratio is read three times, and every reading
must meet the goal: with Python's collector on, as in any process (json.loads then also pays
for rescanning the desired state around it); with it paused, as `reconciler plan` runs both
its read and its plan (reconciler.gcpause); and paused, with the live users listed in another
order than desired-state's, as a tenant usually lists them (here userName order, as after an
apply, against desired-state kept by department): the core then reads one side of each pair
out of memory order, which costs it memory waits that json.loads does not have (json.loads
costs the same in either order, so that ratio is over the lower of its two readings). Each
core run starts from the desired state as the loader leaves it: what the plan derives and
keeps on it (memberships) is dropped first, so every run pays for deriving it.

The policy overhead is judged on two readings, the larger one counting: the wall time of a
whole `reconciler plan` with and without them (after a warm-up run, so both find the
tenant's caches full), and their cost measured in process (guard with minus without them)
over the CPU time of a whole `reconciler plan` without them, which one run of each whole
command cannot resolve on a shared machine.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from reconciler.commands.tenant_init import extensions_of
from reconciler.desired.loader import load
from reconciler.desired.models import CORE_USER, Profile
from reconciler.desired.state import DesiredState
from reconciler.live import LiveState
from reconciler.plan import scimmap
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.guard import guard
from reconciler.plan.rules import evaluate
from reconciler.policy import load_policies
from reconciler.scim.profiles import facts
from reconciler.tenant.settings import TenantSettings
from reconciler.tenant.store import Store, init_tenant
from tests.bench.generate import generate
from tests.servers import serve_embedded

REPO = Path(__file__).resolve().parents[2]
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
T = TypeVar("T")


# `reconciler` in a child process that reports its own peak memory (KiB) on stderr: VmHWM,
# the peak of this process's own memory. (ru_maxrss would also count the bench's own memory,
# which a forked child starts out sharing.)
WRAP = """import resource, sys
from reconciler.cli import main
try:
    main()
finally:
    use = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print("PEAK_RSS", hwm, "CPU", use.ru_utime + use.ru_stime, file=sys.stderr)
"""
# GoTo's 10 requests/s, which the goto profile keeps to, would make the whole command's wall
# time mostly waiting; the command is timed with it lifted, and its cost printed apart.
GOTO_RATE = 10


def _best(
    fn: Callable[[], T],
    runs: int = 3,
    *,
    paused: bool = False,
    before: Callable[[], object] = lambda: None,
) -> tuple[float, T]:
    """The least CPU time of ``runs`` calls, and the last result. ``paused``: the garbage
    collector is paused during each call. ``before`` runs before each call, untimed."""
    best, result = float("inf"), None
    for _ in range(runs):
        result = None
        before()
        gc.collect()
        if paused:
            gc.disable()
        t = time.process_time()
        try:
            result = fn()
        finally:
            best = min(best, time.process_time() - t)
            gc.enable()
    assert result is not None
    return best, result


# What build_plan derives from a desired state and caches on it; the loader does not.
DERIVED = ("user_names", "members", "member_lists", "groups_of", "user_groups", "_memberships")


def _underived(state: DesiredState) -> None:
    for name in DERIVED:
        state.__dict__.pop(name, None)


def live_pages(
    state: DesiredState, changed: float, *, order: str = "desired"
) -> tuple[list[bytes], list[bytes]]:
    """SCIM list pages (JSON bytes) of a tenant that matches ``state`` but for ``changed``.
    ``order``: "desired" lists the users in desired-state's order; "userName" in userName
    order, as a tenant lists the accounts `reconciler apply` created (it creates them in the
    plan's order) while desired-state keeps its users by department."""
    rng = random.Random(1)
    access = evaluate(state)
    ids = {u.userName.casefold(): f"u{i}" for i, u in enumerate(state.users)}
    users = []
    for i, u in enumerate(state.users):
        managed = scimmap.desired_user(u, state, access.get(u.userName.casefold()), ids)
        body = scimmap.scim_body(managed, [CORE_USER])
        body["id"], body["meta"] = f"u{i}", {"version": f'W/"{i}"', "resourceType": "User"}
        if rng.random() < changed:
            body["title"] = "Changed outside git"
        users.append(body)
    groups = []
    for n, g in enumerate(state.groups):
        members = state.members.get(g.displayName.casefold(), frozenset())
        groups.append(
            {
                "id": f"g{n}",
                "displayName": g.displayName,
                "externalId": g.externalId,
                "members": [{"value": ids[m]} for m in sorted(members)],
                "meta": {"version": 'W/"1"', "resourceType": "Group"},
            }
        )
    if order == "userName":
        users.sort(key=lambda u: str(u["userName"]).casefold())
    page = lambda rs: json.dumps({"totalResults": len(rs), "Resources": rs}).encode()  # noqa: E731
    return (
        [page(users[i : i + 1000]) for i in range(0, len(users), 1000)],
        [page(groups[i : i + 1000]) for i in range(0, len(groups), 1000)],
    )


def _store(db: Path, users: list[dict[str, Any]], groups: list[dict[str, Any]]) -> None:
    store = Store(db)
    rows = [
        ("User", u["id"], {**u, "schemas": [CORE_USER, *[k for k in u if k[:4] == "urn:"]]})
        for u in users
    ]
    rows += [("Group", g["id"], {**g, "schemas": [CORE_GROUP]}) for g in groups]
    store.put_many(rows)
    store.close()


def _parse(pages: list[bytes]) -> list[dict[str, Any]]:
    return [r for p in pages for r in json.loads(p)["Resources"]]


def main() -> bool:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    users, groups = int(100_000 * scale), max(10, int(2_000 * scale))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "desired-state"
        generate(root, users=users, groups=groups, rules=50, url="local:tenant.db")
        tenant_yaml = root / "tenant.yaml"
        tenant_yaml.write_text(tenant_yaml.read_text() + "rate_limit: 1000000\n")
        state = load(root).state
        assert state is not None
        upages, gpages = live_pages(state, 0.01)
        parse, (live_users, live_groups) = _best(lambda: (_parse(upages), _parse(gpages)))
        live = LiveState("local:tenant.db", tuple(live_users), tuple(live_groups))
        ctx = PlanContext(now=dt.datetime.now(dt.UTC))
        fresh = lambda: _underived(state)  # noqa: E731
        core, plan = _best(lambda: build_plan(state, live, ctx), before=fresh)
        parse_paused = _best(lambda: (_parse(upages), _parse(gpages)), paused=True)[0]
        core_paused = _best(lambda: build_plan(state, live, ctx), paused=True, before=fresh)[0]
        policies = load_policies(REPO / "policies")
        without = core + _best(lambda: guard(plan, state, evaluate(state), policies=None))[0]
        with_policies = (
            core + _best(lambda: guard(plan, state, evaluate(state), policies=policies))[0]
        )
        # The whole command, against a local: tenant holding the same data.
        db = Path(tmp) / "tenant.db"
        init_tenant(db, TenantSettings(extensions=extensions_of(state)))
        _store(db, live_users, live_groups)
        no_policies = Path(tmp) / "no-policies"
        no_policies.mkdir()
        # The tenant is served by its own process, as a real one would be: the plan's time and
        # memory are the reconciler's alone.
        with serve_embedded(db) as url:
            cmd = [
                sys.executable,
                "-c",
                WRAP,
                "plan",
                str(root),
                "--format",
                "json",
                "--tenant",
                url,
            ]

            def whole(policy_dir: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
                """Wall time, the plan process's CPU time, and the run."""
                t = time.perf_counter()
                r = subprocess.run(
                    [*cmd, "--policies", str(policy_dir)], cwd=tmp, capture_output=True, text=True
                )
                wall = time.perf_counter() - t
                if "PEAK_RSS" not in r.stderr:
                    raise RuntimeError(
                        f"plan failed ({r.returncode}): {r.stdout[:300]} {r.stderr[-2000:]}"
                    )
                return wall, float(r.stderr.rsplit(" CPU ", 1)[-1].split()[0]), r

            whole(no_policies)  # fills the server's caches: both timed runs find them full
            bare_plan, bare_cpu, _ = whole(no_policies)
            with_plan, with_cpu, r = whole(REPO / "policies")
        # The same tenant listed in another order than desired-state's (userName order, as
        # after an apply; desired-state by department): the core then reads one side of
        # each pair out of memory order. json.loads costs the same either way.
        upages, gpages = live_pages(state, 0.01, order="userName")
        other = LiveState("local:tenant.db", tuple(_parse(upages)), tuple(_parse(gpages)))
        other_parse = _best(lambda: (_parse(upages), _parse(gpages)), paused=True)[0]
        other_core, other_plan = _best(
            lambda: build_plan(state, other, ctx), paused=True, before=fresh
        )
        assert other_plan.plan_hash == plan.plan_hash  # the same plan, whatever the order
        rss = int(r.stderr.rsplit("PEAK_RSS ", 1)[-1].split()[0]) / 1024
        errors = [
            d["message"]
            for d in json.loads(r.stdout or "{}").get("diagnostics", [])
            if d["severity"] == "error"
        ]
    changes = len(plan.changes)
    ratio = core / parse
    ratio_paused = core_paused / parse_paused
    overhead = with_policies / without - 1
    print(f"{users} users / {groups} groups / 50 rules, {changes} changes (1% drifted)")
    print("CPU time, best of 3:")
    print(f"json.loads of the live pages:       {parse:7.2f} s")
    print(f"pure plan core:                     {core:7.2f} s   ratio {ratio:.2f} (goal <= 1.50)")
    # json.loads allocates millions of containers, so half its time above is the collector
    # rescanning the heap around it (the desired state); the core allocates far less.
    print(
        f"  the same with the collector paused, as `reconciler plan` runs both: "
        f"json.loads {parse_paused:.2f} s, core {core_paused:.2f} s, "
        f"ratio {ratio_paused:.2f} (goal <= 1.50)"
    )
    # json.loads costs the same in either order: the ratio is taken over the lower of its two
    # readings, so that one slowed by the machine cannot make the core look faster.
    other_base = min(other_parse, parse_paused)
    ratio_other = other_core / other_base
    print(
        f"  live users listed in another order than desired-state's, collector paused: "
        f"json.loads {other_parse:.2f} s, core {other_core:.2f} s, ratio {ratio_other:.2f} "
        f"over {other_base:.2f} s, the lower json.loads reading (goal <= 1.50)"
    )
    print(f"plan core + guard without policies: {without:7.2f} s")
    print(f"plan core + guard with policies:    {with_policies:7.2f} s   (+{overhead * 100:.0f}%)")
    # The policies' own cost, measured in process (best of 3), over what the whole command
    # costs without them: robust where one run of each whole command is not (the two runs'
    # difference is within their noise on a shared machine, either way).
    policy_cost = with_policies - without
    whole_overhead = policy_cost / bare_cpu
    wall_overhead = with_plan / bare_plan - 1
    print("whole `reconciler plan` (wall; CPU of the plan process):")
    print(f"  without policies:         {bare_plan:7.2f} s; {bare_cpu:7.2f} s")
    print(
        f"  with the sample policies: {with_plan:7.2f} s; {with_cpu:7.2f} s   "
        f"({with_cpu / bare_cpu - 1:+.0%} CPU, {with_plan / bare_plan - 1:+.0%} wall, one run "
        f"each); exit {r.returncode}; peak RSS {rss:.0f} MiB (goal <= 1024)"
    )
    page = facts(Profile.goto).page_size
    pages = 2 + -(-users // page) + -(-groups // page)
    print(
        f"  (GoTo's own rate limit, {GOTO_RATE} requests/s, lifted for these runs: against GoTo "
        f"the read's {pages} requests of {page} resources would add at least "
        f"{pages / GOTO_RATE:.0f} s of waiting)"
    )
    print(
        f"policies add {wall_overhead:+.0%} to the wall time of `reconciler plan` (goal <= 50%); "
        f"cross-check in process: their cost {policy_cost:.2f} s CPU over the plan's "
        f"{bare_cpu:.2f} s, {whole_overhead:+.0%}"
    )
    for e in errors[:3]:
        print(f"  plan diagnostic (error): {e[:160]}")
    verdicts = {
        "plan core <= 1.5x json.loads, collector on and paused, live in either order "
        "(issue: plan)": max(ratio, ratio_paused, ratio_other) <= 1.5,
        "policies add <= 50% to reconciler plan (issue: policies)": max(
            wall_overhead, whole_overhead
        )
        <= 0.5,
        "peak memory <= 1 GiB": rss <= 1024,
    }
    for goal, ok in verdicts.items():
        print(f"{goal}: {'met' if ok else 'NOT MET'}")
    return all(verdicts.values())
