#!/usr/bin/env bash
# What `make demo` installs into .venv, and no more: the project (the MCP SDK, jsonschema, rich), then
# AutoGen and its OpenAI client, the demo's model client (the `openai` extra). One line per step with
# the seconds since the start, and a line every 15 s while a step is still working, so a first run is
# never silent; pip's own output goes to .venv/pip-demo.log, shown (its end) only on failure.
#
# Usage: bash scripts/install_demo.sh        (PYTHON=python3.11 to choose the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
LOG="$VENV/pip-demo.log"

say() { echo "setup: [${SECONDS}s] $*"; }
# Runs one step into the log, saying so every 15 s while it works; on failure shows the log's end.
step() {
    local what="$1"; shift
    say "$what"
    "$@" >>"$LOG" 2>&1 &
    local pid=$! next=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if [ "$SECONDS" -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
            say "  ... still $what"
            next=$((SECONDS + 15))
        fi
    done
    if ! wait "$pid"; then
        tail -n 30 "$LOG" >&2
        echo "setup: error: $what failed (the whole log: $LOG)" >&2
        exit 1
    fi
}

if [ ! -x "$PY" ]; then
    mkdir -p "$VENV"
    step "creating $VENV with $("${PYTHON:-python3}" --version 2>&1)" "${PYTHON:-python3}" -m venv "$VENV"
fi
: >"$LOG"
PIP=("$PY" -m pip install -q --disable-pip-version-check)
cd "$ROOT"
step "installing the project (MCP SDK, jsonschema, rich)" "${PIP[@]}" -e .
step "installing AutoGen and its OpenAI client" \
    "${PIP[@]}" -e ".[openai]"
step "checking the imports" "$PY" -c "import bridge, mcp, autogen_agentchat, autogen_ext.models.openai"
say "ready"
