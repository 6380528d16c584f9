#!/usr/bin/env bash
# Make sure a headless browser is on this machine: the approval page's tests drive Debian's
# chromium through its chromedriver with selenium (an explicit driver path, so selenium never
# downloads one). A no-op when both are present; otherwise installs Debian's `chromium` and
# `chromium-driver` packages with apt-get, as root or through password-less sudo.
#
# Usage: scripts/install_chromium.sh [--check]
#   --check   install nothing; exit 0 when both are present, 1 otherwise
set -euo pipefail

present() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
}

if present; then
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "chromium or chromedriver not found (/usr/bin/chromium, /usr/bin/chromedriver)" >&2
  exit 1
fi
source "$(dirname "$0")/apt_packages.sh"
as_root_or_fail install_chromium "run 'sudo apt-get install -y chromium chromium-driver', or put chromium and its chromedriver at /usr/bin/chromium and /usr/bin/chromedriver"
echo "installing chromium and chromium-driver (apt-get) for the approval page's tests..."
apt_install install_chromium chromium chromium-driver
if ! present; then
  echo "install_chromium: the packages are installed but /usr/bin/chromedriver is still missing" >&2
  exit 1
fi
