"""``python -m bridge.autogen.distributed host|worker``: the host, or one worker, as a process of its own.

    python -m bridge.autogen.distributed host --port 50051
    python -m bridge.autogen.distributed worker --host HOST:50051 --name w1 --agents triage --components agents.json

The host prints ``LISTENING HOST:PORT`` on stderr once it accepts connections; a worker prints
``READY NAME AGENTS`` once its agents are registered. Both run until SIGTERM or SIGINT. A worker
reads what its agents' configs reference (``${VAR}``: server keys, the audit password, the model
key) from its environment, and exits with status 1 when the host stops relaying its messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ...errors import BridgeError, ConfigError
from ...sanitize import InertFormatter, one_line
from .worker import HostLost, serve_host, serve_worker

PROG = "python -m bridge.autogen.distributed"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    host = sub.add_parser("host", help="the gRPC host every message goes through")
    host.add_argument("--port", type=int, default=50051, help="0: a free one (default 50051)")
    host.add_argument("--bind", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    worker = sub.add_parser("worker", help="a worker serving some agents")
    worker.add_argument("--host", required=True, help="the host's address, HOST:PORT")
    worker.add_argument("--name", required=True, help="names this worker (and its audit records)")
    worker.add_argument("--agents", required=True, help="comma-separated agent names from the component file")
    worker.add_argument("--team", help="those of --agents that take part in team runs (default: all; '' for none)")
    worker.add_argument("--components", type=Path, required=True,
                        help="a JSON object: agent name -> agent_components(...) of that agent")
    worker.add_argument("--host-timeout", type=float, default=None,
                        help="seconds without the host relaying before the worker exits (default 15)")
    return parser


def _components(path: Path) -> dict[str, dict[str, object]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path} is not a JSON component file ({e}); write one with agent_components()") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object (agent name -> its components), not {type(loaded).__name__}")
    return loaded


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.command == "host":
        await serve_host(args.port, stop, bind=args.bind,
                         listening=lambda address: print(f"LISTENING {address}", file=sys.stderr, flush=True))
        return
    components = _components(args.components)
    agents = [a for a in args.agents.split(",") if a]
    team = None if args.team is None else [a for a in args.team.split(",") if a]
    extra = {} if args.host_timeout is None else {"host_timeout": args.host_timeout}
    await serve_worker(args.host, args.name, agents, components, stop, team=team,
                       ready=lambda: print(f"READY {args.name} {','.join(agents)}", file=sys.stderr, flush=True),
                       **extra)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # What a server sent reaches these lines (its stderr in a start-up error, its words in a warning).
    handler = logging.StreamHandler()
    handler.setFormatter(InertFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        asyncio.run(_serve(args))
    except (BridgeError, HostLost, OSError) as e:
        print(f"{PROG} {args.command}: {one_line(str(e))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
