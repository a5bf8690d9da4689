"""Applying 1,000 changes vs a bare httpx loop sending the same requests, same concurrency.

Goal (issue: apply): `reconciler apply` over loopback at the default concurrency takes at most
1.3x the wall time of a bare loop sending the same requests; requests sent <= changes +
retries. Both run against copies of the same seeded tenant, served by `reconciler tenant serve`.

What makes the comparison fair:
- the same requests: the bare loop (bare_loop.py) replays, for each change of the plan, the
  request apply sends (method, path, body, If-Match), stage by stage in apply's order, at the
  same concurrency, with the same connection limit;
- the same server: each side gets its own fresh copy of one seeded tenant, served the same way;
- both sides are whole processes timed from start to exit: the bare loop pays Python and httpx
  start-up, apply pays its own (and reading the plan, the journal, the receipt);
- BENCH_RUNS runs (3 by default), alternating which side goes first; the verdict is the median.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from reconciler.desired.loader import load
from reconciler.desired.models import Profile
from reconciler.plan.build import PlanContext, build_plan
from reconciler.plan.model import STAGES, Plan
from reconciler.scim import open_client, read_live
from reconciler.scim.client import PATCH_OP
from reconciler.scim.profiles import PROFILES
from tests.servers import serve_embedded

CONCURRENCY = 8  # the generic profile's default


def _state(root: Path, users: int, url: str) -> None:
    root.mkdir(parents=True)
    # No client-side rate limit: the figure is the engine's overhead, not the profile's pacing
    # (the generic profile would hold apply to 50 requests/s, which a bare loop ignores).
    (root / "tenant.yaml").write_text(
        f"url: {url}\nownership: {{users: suspend}}\nrate_limit: 100000\n"
    )
    lines = ["groups:"] + [f"  - displayName: Team {g}" for g in range(10)] + ["users:"]
    for i in range(users):
        lines.append(
            f"  - userName: user{i}@x.example\n    externalId: 'e{i}'\n    title: T{i}\n"
            f"    groups: [Team {i % 10}]"
        )
    (root / "state.yaml").write_text("\n".join(lines) + "\n")


async def _seed(url: str, n_existing: int, n_extra: int) -> None:
    core = "urn:ietf:params:scim:schemas:core:2.0:User"
    async with httpx.AsyncClient(base_url=url + "/") as h:
        for g in range(10):
            await h.post(
                "Groups",
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": f"Team {g}",
                },
            )
        for i in range(n_existing):  # present, with an outdated title: updates
            await h.post(
                "Users",
                json={
                    "schemas": [core],
                    "userName": f"user{i}@x.example",
                    "externalId": f"e{i}",
                    "title": "old",
                },
            )
        for i in range(n_extra):  # not in desired-state: suspended (ownership: suspend)
            await h.post("Users", json={"schemas": [core], "userName": f"extra{i}@x.example"})


async def _plan(state_dir: Path, url: str) -> Plan:
    state = load(state_dir).state
    assert state is not None
    async with open_client(url, rate_limit=1e9) as c:
        live = await read_live(c)
    return build_plan(state, live, PlanContext(now=dt.datetime.now(dt.UTC), url=url))


def _requests(plan: Plan) -> list[list[list[Any]]]:
    """The requests apply sends for these changes, stage by stage, for the bare loop to replay:
    the same methods, paths, bodies and If-Match headers."""
    order = {stage: n for n, stage in enumerate(STAGES)}
    stages: dict[int, list[list[Any]]] = {}
    chunk = PROFILES[Profile.generic].member_chunk
    for c in plan.changes:
        out = stages.setdefault(order[(c.resource_type, c.action)], [])
        path = ("Users" if c.resource_type == "User" else "Groups") + (f"/{c.id}" if c.id else "")
        if_match = {"If-Match": c.version} if plan.etag and c.version else {}
        if c.action == "create":
            out.append(["POST", path, c.body, {}])
        elif c.action == "delete":
            out.append(["DELETE", path, None, if_match])
        elif c.action == "add_member":
            values = c.operations[0]["value"]
            for n in range(0, len(values), chunk):
                op = {"op": "add", "path": "members", "value": values[n : n + chunk]}
                out.append(["PATCH", path, {"schemas": [PATCH_OP], "Operations": [op]}, {}])
        elif c.action == "remove_member":
            ops = list(c.operations)
            for n in range(0, len(ops), chunk):
                body = {"schemas": [PATCH_OP], "Operations": ops[n : n + chunk]}
                out.append(["PATCH", path, body, {}])
        else:
            body = {"schemas": [PATCH_OP], "Operations": list(c.operations)}
            out.append(["PATCH", path, body, if_match])
    return [stages[k] for k in sorted(stages)]


def _timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    """Wall time of a whole process, start to exit (both sides pay their process start)."""
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[:4]} failed: {r.stderr[-2000:]}")
    return wall, r.stdout


def _side(side: str, tmp: Path, base_db: Path, users: int, run: int) -> tuple[float, int, int, int]:
    """(wall seconds, requests sent, retries, changes) of one side on a fresh tenant copy."""
    db = tmp / f"{side}-{run}.db"
    for suffix in ("", "-wal", "-shm"):  # the tenant's SQLite is in WAL mode
        if Path(f"{base_db}{suffix}").exists():
            shutil.copy(f"{base_db}{suffix}", f"{db}{suffix}")
    with serve_embedded(db) as url:
        state_dir = tmp / f"state-{side}-{run}"
        _state(state_dir, users, url)
        plan = asyncio.run(_plan(state_dir, url))
        changes = len(plan.changes)
        if side == "bare":
            spec = tmp / f"requests-{run}.json"
            stages = _requests(plan)
            spec.write_text(json.dumps({"url": url, "concurrency": CONCURRENCY, "stages": stages}))
            wall, out = _timed(
                [sys.executable, str(Path(__file__).with_name("bare_loop.py")), str(spec)], tmp
            )
            return wall, int(out.strip()), 0, changes
        plan_file = tmp / f"plan-{run}.json"
        plan_file.write_text(plan.model_dump_json())
        cmd = [sys.executable, "-m", "reconciler", "apply", str(plan_file), "--dir", str(state_dir)]
        cmd += ["--format", "json", "--concurrency", str(CONCURRENCY)]
        wall, out = _timed(cmd, tmp)
        receipt = json.loads(out)
        assert receipt["counts"] == {"ok": changes}, receipt["counts"]
        return wall, receipt["requests_sent"], receipt.get("retries", 0), changes


def main() -> bool:
    scale = float(os.environ.get("BENCH_SCALE", "1"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    creates, updates, suspends = int(590 * scale), int(300 * scale), int(100 * scale)
    ratios, met_requests = [], True
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base_db = tmp / "base.db"
        with serve_embedded(base_db) as url:
            asyncio.run(_seed(url, updates, suspends))
        for run in range(runs):
            # Alternate which side goes first, so neither always gets the warmer machine.
            sides = ("bare", "apply") if run % 2 == 0 else ("apply", "bare")
            got = {side: _side(side, tmp, base_db, creates + updates, run) for side in sides}
            (bare, bare_requests, _, changes), (ours, sent, retries, _) = got["bare"], got["apply"]
            ratio = ours / bare
            ratios.append(ratio)
            met_requests &= sent <= changes + retries
            print(
                f"run {run + 1}: bare httpx loop {bare:6.2f} s ({bare_requests} requests); "
                f"reconciler apply {ours:6.2f} s ({sent} requests, {retries} retries, "
                f"for {changes} changes); ratio {ratio:.2f}",
                flush=True,
            )
    print(
        f"{changes} changes: {creates} creates, {updates} updates, memberships, {suspends} "
        f"suspends; concurrency {CONCURRENCY}; both sides are whole processes (start included)"
    )
    median = statistics.median(ratios)
    met = median <= 1.3 and met_requests
    print(
        f"ratio apply/bare: median {median:.2f} of {runs} runs (goal <= 1.30); requests <= "
        f"changes + retries: {'yes' if met_requests else 'NO'}: {'met' if met else 'NOT MET'}"
    )
    return met
