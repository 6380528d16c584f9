#!/usr/bin/env bash
# Builds .venv-metagpt: MetaGPT 0.8.2 beside this project, from scripts/metagpt.requirements.txt
# (every package pinned, installed with --no-deps; the file's header says why), plus an offline
# MetaGPT config. Idempotent: a stamp keyed on the requirements file, pyproject.toml and this script
# makes a rerun a no-op. One line per step; on failure one line naming the step, the log beside it.
#
# MetaGPT reads its LLM config at import time: os.environ, then $METAGPT_PROJECT_ROOT/config/config2.yaml,
# then ~/.metagpt/config2.yaml (which, if a user has one, wins). This script writes
#   .venv-metagpt/metagpt-root/config/config2.yaml   (openai type, base_url http://127.0.0.1:9/v1, fake key)
# and a .pth hook that sets METAGPT_PROJECT_ROOT to that folder for .venv-metagpt/bin/python unless it
# is already set; MetaGPT's logs/ and workspace/ land there too, never in the home folder or the tree.
#
# Packages come through a wheelhouse (.data/metagpt-wheels, or $METAGPT_WHEELHOUSE): filled once from
# the index (sdists built there), then every build installs from it with --no-index. This machine's
# pip keeps no HTTP cache, so without it each rebuild would download ~210 MB again.
#
# Usage: bash scripts/metagpt_env.sh        (METAGPT_PYTHON=/path/to/python3.11 to choose the interpreter)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-metagpt"
REQ="$ROOT/scripts/metagpt.requirements.txt"
STAMP="$VENV/.metagpt-env.stamp"
LOG="$VENV/build.log"
MG_ROOT="$VENV/metagpt-root"
WHEELS="${METAGPT_WHEELHOUSE:-$ROOT/.data/metagpt-wheels}"

say() { echo "metagpt-env: [${SECONDS}s] $*"; }
die() { echo "metagpt-env: error: $*" >&2; exit 1; }
# Runs one step quietly into the log; on failure names the step and the log's last line.
step() {
    local what="$1"; shift
    say "$what"
    if ! "$@" >>"$LOG" 2>&1; then
        die "$what failed: $(grep -v -e '^WARNING: Location' -e '^ ' -e '^For further' "$LOG" | tail -n 1) (log: $LOG)"
    fi
}

[ -f "$REQ" ] || die "missing $REQ"
key="$(cat "$REQ" "$ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$key" ] && [ -x "$VENV/bin/python" ]; then
    say "up to date ($VENV)"
    exit 0
fi

# MetaGPT 0.8.2 supports Python 3.9-3.11.
fits() { "$1" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; }
PY=""
for cand in ${METAGPT_PYTHON:-} python3.11 python3.10 python3.9 python3; do
    if command -v "$cand" >/dev/null 2>&1 && fits "$cand"; then PY="$(command -v "$cand")"; break; fi
done
[ -n "$PY" ] || die "no Python 3.9-3.11 found (MetaGPT 0.8.2 needs <3.12); set METAGPT_PYTHON"

# The environment is exactly the lock: any change of key rebuilds the venv from nothing.
if [ -e "$VENV" ]; then say "removing the old $VENV"; rm -rf "$VENV"; fi
mkdir -p "$VENV" "$WHEELS"
: >"$LOG"
step "creating $VENV with $("$PY" --version 2>&1)" "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
LOCAL=(--no-deps --no-index --find-links "$WHEELS")
count="$(grep -c '==' <(grep -v '^#' "$REQ"))"
if "${PIP[@]}" install --dry-run -q "${LOCAL[@]}" -r "$REQ" >>"$LOG" 2>&1; then
    say "wheelhouse has all $count pinned packages ($WHEELS)"
else
    step "filling the wheelhouse from the index ($WHEELS, ~210 MB once)" \
        "${PIP[@]}" wheel --no-deps --find-links "$WHEELS" --wheel-dir "$WHEELS" -r "$REQ"
fi
# No byte-compiling of ~18,000 files up front (half the install time); Python compiles what it imports.
step "installing $count pinned packages (--no-deps, from the wheelhouse)" \
    "${PIP[@]}" install --no-compile "${LOCAL[@]}" -r "$REQ"
step "installing this project (editable, --no-deps)" \
    "${PIP[@]}" install --no-build-isolation "${LOCAL[@]}" -e "$ROOT"

write_config() {
    mkdir -p "$MG_ROOT/config"
    cat >"$MG_ROOT/config/config2.yaml" <<'EOF'
# Offline MetaGPT config written by scripts/metagpt_env.sh. Nothing listens on port 9: a stray
# LLM call is refused (MetaGPT retries a refused connection 6 times before raising). Tests point
# base_url at their own loopback server: Config.from_llm_config({...}) or Role(config=...).
llm:
  api_type: openai
  model: gpt-4o-mini
  base_url: http://127.0.0.1:9/v1
  api_key: sk-offline-not-a-key
  calc_usage: false  # token counting would make tiktoken download its BPE files
EOF
    # A .pth line that starts with "import" runs at every start of this venv's Python.
    "$VENV/bin/python" - "$MG_ROOT" <<'PY'
import pathlib, sys, sysconfig
line = f"import os; os.environ.setdefault('METAGPT_PROJECT_ROOT', {sys.argv[1]!r})\n"
pathlib.Path(sysconfig.get_paths()["purelib"], "metagpt_offline_config.pth").write_text(line)
PY
}
step "writing the offline MetaGPT config ($MG_ROOT/config/config2.yaml)" write_config

step "checking the imports (metagpt roles/actions/team, bridge, mcp)" \
    env -u METAGPT_PROJECT_ROOT "$VENV/bin/python" -W ignore -c \
    "import metagpt; from metagpt.roles import Role; from metagpt.actions import Action; \
from metagpt.team import Team; import bridge; import mcp; import autogen_agentchat"

echo "$key" >"$STAMP"
say "ready: $VENV/bin/python (METAGPT_PROJECT_ROOT defaults to $MG_ROOT)"
