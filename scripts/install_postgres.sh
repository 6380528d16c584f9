#!/usr/bin/env bash
# Make sure PostgreSQL's server programs (initdb, postgres) are on this machine: the
# audit-log tests and the distributed example start a throwaway server of their own with them
# (fixtures/postgres.py). A no-op when initdb is found; otherwise installs Debian's `postgresql`
# package with apt-get, as root or through password-less sudo, and prints one progress line.
#
# Usage: scripts/install_postgres.sh [--check]
#   --check   install nothing; exit 0 when the programs are present, 1 otherwise
#
# Looks where fixtures/postgres.py looks: $PG_BIN, PATH, `pg_config --bindir`,
# /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
set -euo pipefail

find_initdb() {
  local dir
  for dir in ${PG_BIN:+"$PG_BIN"} $(command -v initdb >/dev/null 2>&1 && dirname "$(readlink -f "$(command -v initdb)")") \
             $(command -v pg_config >/dev/null 2>&1 && pg_config --bindir 2>/dev/null) \
             $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn) /usr/local/pgsql/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

if find_initdb >/dev/null; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "PostgreSQL server programs (initdb) not found" >&2
  exit 1
fi

source "$(dirname "$0")/apt_packages.sh"
as_root_or_fail install_postgres "run 'sudo apt-get install -y postgresql', or set PG_BIN to the directory holding initdb"

echo "installing PostgreSQL server programs (apt-get install postgresql) for the audit-log tests..."
# Only the programs are needed: the tests run servers of their own, so the package is told not
# to create (and start) a system-wide cluster, unless the machine already says otherwise.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  "${as_root[@]}" mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | "${as_root[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
apt_install install_postgres postgresql
if ! find_initdb >/dev/null; then
  echo "install_postgres: postgresql installed but initdb is still not found" >&2
  exit 1
fi
