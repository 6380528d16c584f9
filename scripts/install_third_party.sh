#!/usr/bin/env bash
# Install the pinned third-party MCP servers, Node.js 22 and the official
# conformance suite into the git-ignored .third_party/ folder of the repo.
#
# Usage: scripts/install_third_party.sh [--check] [--force] [--update-locks]
#   (no option)     install whatever is missing or out of date; a no-op (well
#                   under a second) when every stamp matches the pins
#   --check         install nothing; exit 0 when up to date, 1 otherwise
#   --force         reinstall every component
#   --update-locks  re-resolve the transitive pins after editing
#                   scripts/third_party.lock, and rewrite
#                   scripts/third_party.package-lock.json and
#                   scripts/third_party.constraints.txt (implies --force)
#
# Environment: PYTHON (default python3) creates the venvs; THIRD_PARTY_DIR
# overrides the destination (default <repo>/.third_party); NPM (default npm).
#
# Layout:
#   .third_party/node/        node-<os>-<arch>@<pin> (bin: .third_party/bin/node)
#   .third_party/npm/         one npm project with every npm pin
#   .third_party/venvs/<name> one venv per PyPI server
#   .third_party/bin/         node, conformance (wrapper running under that node)
#   .third_party/logs/        one log per step; printed on failure
# Each component writes a .stamp holding its pins after a verified install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK="$ROOT/scripts/third_party.lock"
NPM_LOCK="$ROOT/scripts/third_party.package-lock.json"
PIP_CONSTRAINTS="$ROOT/scripts/third_party.constraints.txt"
DEST=${THIRD_PARTY_DIR:-$ROOT/.third_party}
PYTHON=${PYTHON:-python3}
NPM=${NPM:-npm}
LOGS="$DEST/logs"

check_only=0 force=0 update_locks=0
for arg in "$@"; do
  case $arg in
    --check) check_only=1 ;;
    --force) force=1 ;;
    --update-locks) update_locks=1 force=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install_third_party: unknown option: $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "third-party: $*"; }
die() { echo "install_third_party: ERROR: $*" >&2; exit 1; }

# run LOGNAME CMD...: run quietly into a log; on failure show its tail and die.
run() {
  local log="$LOGS/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "install_third_party: ERROR: step '$(basename "$log" .log)' failed: $*" >&2
    echo "---- last lines of $log ----" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}

[[ -f $LOCK ]] || die "missing pins file $LOCK"

# ---- parse the pins ---------------------------------------------------------
node_version="" npm_pins=() venv_pins=()
while read -r kind a b c rest; do
  case $kind in
    ''|'#'*) continue ;;
    node) node_version=$a ;;
    npm) [[ -n $b ]] || die "bad npm line in $LOCK: $a"; npm_pins+=("$a@$b") ;;
    venv) [[ -n $c ]] || die "bad venv line in $LOCK: $a $b"; venv_pins+=("$a $b $c") ;;
    *) die "unknown kind '$kind' in $LOCK" ;;
  esac
done <"$LOCK"
[[ -n $node_version ]] || die "no 'node <version>' line in $LOCK"

case "$(uname -s)" in Linux) node_os=linux ;; Darwin) node_os=darwin ;; *) die "unsupported OS $(uname -s)" ;; esac
case "$(uname -m)" in x86_64|amd64) node_arch=x64 ;; aarch64|arm64) node_arch=arm64 ;; *) die "unsupported CPU $(uname -m)" ;; esac
node_pkg="node-$node_os-$node_arch"
NODE_DIR="$DEST/node"
NODE_BIN="$NODE_DIR/node_modules/$node_pkg/bin"
NPM_DIR="$DEST/npm"

file_sum() { if [[ -f $1 ]]; then cksum <"$1"; else echo none; fi; }
py_id() { "$PYTHON" -c 'import sys; print(sys.implementation.name, *sys.version_info[:3])' 2>/dev/null || echo "no-python"; }

node_stamp="$node_pkg@$node_version"
npm_stamp="node=$node_version ${npm_pins[*]} lock=$(file_sum "$NPM_LOCK")"
venv_stamp() { echo "$1 python=$(py_id) constraints=$(file_sum "$PIP_CONSTRAINTS")"; }

up_to_date() { # up_to_date DIR EXPECTED
  [[ $force == 0 && -f $1/.stamp && "$(cat "$1/.stamp")" == "$2" ]]
}

if [[ $check_only == 1 ]]; then
  stale=()
  up_to_date "$NODE_DIR" "$node_stamp" || stale+=(node)
  up_to_date "$NPM_DIR" "$npm_stamp" || stale+=(npm)
  for pin in "${venv_pins[@]}"; do
    read -r name pkg ver <<<"$pin"
    up_to_date "$DEST/venvs/$name" "$(venv_stamp "$pkg==$ver")" || stale+=("venv:$name")
  done
  if ((${#stale[@]})); then say "out of date: ${stale[*]}"; exit 1; fi
  say "up to date ($DEST)"; exit 0
fi

mkdir -p "$LOGS" "$DEST/bin"
command -v "$NPM" >/dev/null || die "'$NPM' not found: npm is needed to fetch Node.js and the npm servers"

# ---- node -------------------------------------------------------------------
if up_to_date "$NODE_DIR" "$node_stamp"; then
  say "node $node_version: ok"
else
  say "node $node_version: installing $node_pkg"
  rm -rf "$NODE_DIR"; mkdir -p "$NODE_DIR"
  echo '{"name":"third-party-node","private":true}' >"$NODE_DIR/package.json"
  run node "$NPM" install --prefix "$NODE_DIR" --no-audit --no-fund --save-exact "$node_pkg@$node_version"
  got=$("$NODE_BIN/node" --version 2>&1) || die "installed node does not run: $got"
  [[ $got == "v$node_version" ]] || die "installed node reports $got, expected v$node_version"
  echo "$node_stamp" >"$NODE_DIR/.stamp"
fi
ln -sfn "$NODE_BIN/node" "$DEST/bin/node"
# npm and every npm tool run under the pinned node, never the system one.
export PATH="$NODE_BIN:$PATH"

# ---- npm packages -----------------------------------------------------------
if up_to_date "$NPM_DIR" "$npm_stamp"; then
  say "npm packages (${#npm_pins[@]}): ok"
else
  say "npm packages (${#npm_pins[@]}): installing"
  rm -rf "$NPM_DIR"; mkdir -p "$NPM_DIR"
  deps=""
  for spec in "${npm_pins[@]}"; do
    deps+="${deps:+,}\"${spec%@*}\":\"${spec##*@}\""
  done
  echo "{\"name\":\"third-party-npm\",\"private\":true,\"dependencies\":{$deps}}" >"$NPM_DIR/package.json"
  if [[ $update_locks == 0 && -f $NPM_LOCK ]]; then
    cp "$NPM_LOCK" "$NPM_DIR/package-lock.json"
    # npm ci refuses a lock that does not match package.json: the pins changed.
    if ! "$NPM" ci --prefix "$NPM_DIR" --no-audit --no-fund >"$LOGS/npm.log" 2>&1; then
      tail -n 25 "$LOGS/npm.log" >&2
      die "npm ci failed (log: $LOGS/npm.log). If you changed an npm pin, rerun with --update-locks."
    fi
  else
    run npm "$NPM" install --prefix "$NPM_DIR" --no-audit --no-fund
    cp "$NPM_DIR/package-lock.json" "$NPM_LOCK"
    say "wrote $(basename "$NPM_LOCK")"
  fi
  for spec in "${npm_pins[@]}"; do
    name=${spec%@*} want=${spec##*@}
    got=$(node -p "require(process.argv[1]).version" "$NPM_DIR/node_modules/$name/package.json" 2>/dev/null) ||
      die "$name missing from $NPM_DIR after install"
    [[ $got == "$want" ]] || die "$name is $got, expected $want"
  done
  echo "node=$node_version ${npm_pins[*]} lock=$(file_sum "$NPM_LOCK")" >"$NPM_DIR/.stamp"
fi
cat >"$DEST/bin/conformance" <<EOF
#!/bin/sh
# Generated by scripts/install_third_party.sh: the conformance suite under the pinned node.
exec "$NODE_BIN/node" "$NPM_DIR/node_modules/@modelcontextprotocol/conformance/dist/index.js" "\$@"
EOF
chmod +x "$DEST/bin/conformance"

# ---- PyPI servers, one venv each ----------------------------------------------
command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found"
# Without a constraints file (first run, or --update-locks) resolve freely and
# write one from the venvs afterwards.
pip_update=$update_locks
[[ -f $PIP_CONSTRAINTS ]] || pip_update=1
for pin in "${venv_pins[@]}"; do
  read -r name pkg ver <<<"$pin"
  venv="$DEST/venvs/$name"
  if [[ $pip_update == 0 ]] && up_to_date "$venv" "$(venv_stamp "$pkg==$ver")"; then
    say "venv $name ($pkg $ver): ok"
    continue
  fi
  say "venv $name ($pkg $ver): installing"
  rm -rf "$venv"
  run "venv-$name" "$PYTHON" -m venv "$venv"
  cargs=()
  [[ $pip_update == 0 ]] && cargs=(-c "$PIP_CONSTRAINTS")
  run "venv-$name" "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
    "${cargs[@]}" "$pkg==$ver"
  got=$("$venv/bin/python" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$pkg" 2>&1) ||
    die "$pkg not importable in $venv: $got"
  [[ $got == "$ver" ]] || die "$pkg is $got in $venv, expected $ver"
  [[ -x $venv/bin/$pkg ]] || die "$venv/bin/$pkg missing after install"
  [[ $pip_update == 1 ]] || venv_stamp "$pkg==$ver" >"$venv/.stamp"
done
if [[ $pip_update == 1 ]]; then
  {
    echo "# Transitive pins for the .third_party venvs (pip constraints), written by"
    echo "# scripts/install_third_party.sh --update-locks; top-level pins live in third_party.lock."
    for pin in "${venv_pins[@]}"; do
      read -r name _ <<<"$pin"
      "$DEST/venvs/$name/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable
    done | grep -v '^#' | sort -u -f
  } >"$PIP_CONSTRAINTS.tmp"
  conflicts=$(grep -v '^#' "$PIP_CONSTRAINTS.tmp" | cut -d= -f1 | tr 'A-Z_.' 'a-z--' | sort | uniq -d)
  [[ -z $conflicts ]] || die "venvs resolved different versions of: $conflicts (see $PIP_CONSTRAINTS.tmp)"
  mv "$PIP_CONSTRAINTS.tmp" "$PIP_CONSTRAINTS"
  say "wrote $(basename "$PIP_CONSTRAINTS")"
  for pin in "${venv_pins[@]}"; do  # the stamps hash the constraints file
    read -r name pkg ver <<<"$pin"
    venv_stamp "$pkg==$ver" >"$DEST/venvs/$name/.stamp"
  done
fi
say "done ($DEST)"
