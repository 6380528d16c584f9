#!/usr/bin/env bash
# Install the comparison environment for the benchmarks: autogen-ext 0.7.5's own MCP
# adapter, which only imports with mcp<2 (our venv has mcp 2.x), so it gets a venv of its own.
#
# Usage: scripts/install_bench_env.sh [--check] [--force]
#   (no option)  install when missing or when the pins below changed; a no-op otherwise
#   --check      install nothing; exit 0 when up to date, 1 otherwise
#   --force      reinstall
#
# Environment: PYTHON (default python3); THIRD_PARTY_DIR (default <repo>/.third_party).
# Result: .third_party/venvs/autogen-ext, with a .stamp holding the pins after a verified install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${THIRD_PARTY_DIR:-$ROOT/.third_party}
PYTHON=${PYTHON:-python3}
VENV="$DEST/venvs/autogen-ext"
LOG="$DEST/logs/venv-autogen-ext.log"

# The adapter under comparison is exactly 0.7.5 (the version our own bridge targets);
# mcp<2 is the only range it imports with. agentchat is needed for the agent-turn bench.
PINS=("autogen-ext[mcp]==0.7.5" "autogen-core==0.7.5" "autogen-agentchat==0.7.5" "mcp>=1.9,<2")

check_only=0 force=0
for arg in "$@"; do
  case $arg in
    --check) check_only=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_bench_env: unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

py_id=$("$PYTHON" -c 'import sys; print(sys.implementation.name, *sys.version_info[:3])' 2>/dev/null) ||
  { echo "install_bench_env: PYTHON=$PYTHON does not run" >&2; exit 1; }
stamp="${PINS[*]} python=$py_id"

if [[ $force == 0 && -f $VENV/.stamp && "$(cat "$VENV/.stamp")" == "$stamp" ]]; then
  [[ $check_only == 1 ]] && echo "bench-env: up to date ($VENV)"
  exit 0
fi
if [[ $check_only == 1 ]]; then echo "bench-env: out of date ($VENV)"; exit 1; fi

echo "bench-env: installing ${PINS[*]} into $VENV"
mkdir -p "$(dirname "$LOG")"
rm -rf "$VENV"
if ! { "$PYTHON" -m venv "$VENV" &&
       "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q "${PINS[@]}"; } >"$LOG" 2>&1; then
  echo "install_bench_env: ERROR: install failed; last lines of $LOG:" >&2
  tail -n 25 "$LOG" >&2
  exit 1
fi
# Verify the one thing that matters: the adapter imports (it does not with mcp 2.x).
if ! got=$("$VENV/bin/python" -c '
import importlib.metadata as m
import autogen_ext.tools.mcp  # noqa: F401
print(m.version("autogen-ext"), m.version("mcp"))' 2>&1); then
  echo "install_bench_env: ERROR: autogen_ext.tools.mcp does not import in $VENV: $got" >&2
  exit 1
fi
echo "bench-env: autogen-ext ${got% *} with mcp ${got#* }"
echo "$stamp" >"$VENV/.stamp"
