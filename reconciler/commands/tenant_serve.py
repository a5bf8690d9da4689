"""``reconciler tenant serve``: the embedded tenant over real HTTP."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path

import typer

from reconciler.errors import UsageError


def run(
    db: Path = typer.Option(..., "--db", help="The tenant's SQLite database (created if missing)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(
        0, "--port", min=0, max=65535, help="Port to listen on; 0 picks a free one."
    ),
    token_env: str | None = typer.Option(
        None,
        "--token-env",
        help="Require 'Authorization: Bearer <token>', the token read from this variable.",
    ),
) -> None:
    """Serve a tenant over HTTP/1.1 (keep-alive). The first line printed is its SCIM base URL.

    Listens on loopback unless --host says otherwise. Data lives in --db and survives
    restarts. Stop it with Ctrl-C or SIGTERM.
    """
    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise UsageError(
                f"--token-env {token_env}: the variable is not set",
                f"export {token_env}=… before starting the tenant",
            )
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            "pick another --port (or 0 for a free one)"
            if in_use
            else "pass an address of this machine to --host, e.g. 127.0.0.1",
        ) from None
    # Imported here: the SCIM server core and uvicorn are heavy, and only this command needs them.
    import uvicorn

    from reconciler.tenant.app import SCIM_PREFIX, build_app

    app = build_app(db, token=token)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"http://{shown}:{bound}{SCIM_PREFIX}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
