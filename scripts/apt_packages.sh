# Sourced by the install_*.sh scripts: Debian packages installed with apt-get, as root or through
# password-less sudo, with apt's chatter kept in a log shown only on failure.
#
#   as_root_or_fail WHO HINT   sets the array as_root (empty as root, else "sudo -n"), or exits 1
#                              saying HINT when neither works
#   apt_install WHO PKG...     apt-get update + install --no-install-recommends; exits 1 on failure

as_root_or_fail() {
  local who=$1 hint=$2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$who: not a Debian-like system (no apt-get); $hint" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    echo "$who: no root or password-less sudo here; $hint" >&2
    exit 1
  fi
}

apt_install() {
  local who=$1 log
  shift
  log=$(mktemp)
  if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
           -o Dpkg::Options::=--force-confold "$@"; } >"$log" 2>&1; then
    echo "$who: apt-get failed:" >&2
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
