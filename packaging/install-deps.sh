#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing Quince need.
#   packaging/install-deps.sh            install whatever is missing (as root, non-interactive)
#   packaging/install-deps.sh --check    exit 0 if everything is installed, 1 otherwise
#                                        (lists the missing packages; no root needed)
# Idempotent: when nothing is missing it does nothing, and `apt-get update` runs only when
# something has to be installed.
set -euo pipefail

# The one list of packages (build, libraries, test tools).
PACKAGES=(
  build-essential pkg-config
  libssl-dev libcjson-dev libpcre2-dev libcurl4-openssl-dev libsqlite3-dev
  libmicrohttpd-dev libgnutls28-dev libtss2-dev libarchive-dev libpq-dev
  libcmocka-dev
  clang libclang-rt-14-dev
  swtpm swtpm-tools tpm2-tools ima-evm-utils
  cpio zstd gzip xz-utils sqlite3 curl jq valgrind procps iproute2 python3 openssl python3-yaml
  chromium chromium-driver python3-selenium
  debhelper dpkg-dev lintian help2man
  postgresql
)

usage() {
  echo "usage: $0 [--check]" >&2
  exit 2
}

# Prints the packages from PACKAGES that are not installed, one a line.
missing_packages() {
  local p status
  for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || echo "$p"
  done
}

mode=install
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h|--help) echo "usage: $0 [--check]"; exit 0 ;;
  *) usage ;;
esac
[ $# -le 1 ] || usage

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-deps: dpkg-query not found; this script supports Debian (12) only" >&2
  exit 1
fi

mapfile -t missing < <(missing_packages)

if [ "$mode" = check ]; then
  if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages are installed"
    exit 0
  fi
  echo "install-deps: missing: ${missing[*]}"
  exit 1
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing: ${missing[*]}" >&2
  echo "install-deps: run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

mapfile -t still < <(missing_packages)
if [ ${#still[@]} -ne 0 ]; then
  echo "install-deps: still missing after install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: done"
