"""A transparent stdio proxy that logs every JSON-RPC message a client sends to an MCP server.

    python benchmarks/_count_proxy.py --log FILE -- COMMAND [ARG...]

It starts COMMAND, copies messages both ways unchanged, and appends one line per client message
to FILE: ``<proxy pid> request|notification|response <method or ->`` (and one per message the
server initiates: ``<pid> server-request|server-notification <method>``). Counting at the wire,
between client and server, makes the agent-turn numbers exact and the same for every client
(ours with mcp 2.x, autogen-ext's with mcp 1.x) without touching either.

Stdlib only, so any venv's Python can run it. Lines are written with one ``os.write`` on an
``O_APPEND`` descriptor, so several proxies (autogen-ext spawns one server per call) can share
one log without interleaving.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any


def _kinds(line: bytes) -> list[str]:
    try:
        message: Any = json.loads(line)
    except ValueError:
        return ["invalid -"]
    out = []
    for item in message if isinstance(message, list) else [message]:
        if not isinstance(item, dict):
            out.append("invalid -")
        elif "method" in item:
            out.append(f"{'request' if 'id' in item else 'notification'} {item['method']}")
        else:
            out.append("response -")
    return out


def _client_to_server(child: subprocess.Popen[bytes], log_fd: int) -> None:
    assert child.stdin is not None
    stdin = sys.stdin.buffer
    try:
        # stdio MCP is newline-delimited JSON, so a line is a message.
        for line in iter(stdin.readline, b""):
            if line.strip():
                for kind in _kinds(line):
                    os.write(log_fd, f"{os.getpid()} {kind}\n".encode())
            child.stdin.write(line)
            child.stdin.flush()
    except (BrokenPipeError, OSError):
        pass
    finally:
        # The client closed our stdin: pass the EOF on, which is how stdio servers are told to exit.
        with contextlib.suppress(OSError):
            child.stdin.close()


def _server_to_client(child: subprocess.Popen[bytes], log_fd: int) -> None:
    assert child.stdout is not None
    out = sys.stdout.buffer
    try:
        for line in iter(child.stdout.readline, b""):
            # Server-initiated messages are logged too (``server request|notification <method>``), since
            # a notification such as tools/list_changed explains a client's next request.
            if line.strip():
                for kind in _kinds(line):
                    if not kind.startswith("response"):
                        os.write(log_fd, f"{os.getpid()} server-{kind}\n".encode())
            out.write(line)
            out.flush()
    except (BrokenPipeError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="file to append one line per client message to")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no server command given")
    log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def forward(signum: int, _frame: object) -> None:
        # Clients stop a stdio server with TERM/KILL after closing stdin; TERM reaches the real server.
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    threading.Thread(target=_client_to_server, args=(child, log_fd), daemon=True).start()
    reader = threading.Thread(target=_server_to_client, args=(child, log_fd), daemon=True)
    reader.start()
    code = child.wait()
    reader.join(timeout=5)
    os.close(log_fd)
    return code


if __name__ == "__main__":
    sys.exit(main())
