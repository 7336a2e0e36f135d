# Shared shell functions for labforge's setup and test scripts.
# shellcheck shell=bash

LABFORGE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LABFORGE_ROOT

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'labforge setup: %s\n' "$*" >&2; exit 1; }

check_node() {
  command -v node >/dev/null 2>&1 || die "Node.js is not installed. Install Node.js 20.19 or newer (Debian: apt-get install nodejs, or nodesource), then run this again."
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
    || die "Node.js $(node --version) is too old: labforge needs 20.19 or newer."
}

# ensure_debian_packages PKG... — installs what is missing with apt when root, or says exactly what to run.
APT_UPDATED=""
ensure_debian_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    die "these packages are needed but this is not a Debian-like system: ${missing[*]}. Install their equivalents and run this again."
  fi
  if [ "$(id -u)" -ne 0 ]; then
    die "these Debian packages are missing: ${missing[*]}. Install them with:  sudo apt-get install -y ${missing[*]}  and run this again."
  fi
  say "Installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# Packages the server needs at run time (qemu-img, prlimit, QEMU with BIOS and UEFI firmware) and to build its native modules.
RUNTIME_PACKAGES=(python3 make g++ qemu-utils util-linux qemu-system-x86 ovmf genisoimage openssl)
# Packages the test suite needs in addition.
TEST_PACKAGES=(postgresql chromium)

ensure_npm_dependencies() {
  cd "$LABFORGE_ROOT" || exit 1
  # node-gyp finds Node's headers offline here (better-sqlite3 builds from source when no prebuilt binary is reachable).
  if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi
  local stamp=node_modules/.labforge-installed
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    say "Installing npm dependencies (the first time compiles SQLite, about 2 minutes)"
    npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
    touch "$stamp"
  fi
}

build() {
  cd "$LABFORGE_ROOT" || exit 1
  say "Building"
  npx --no-install tsc -p tsconfig.json || die "TypeScript build failed"
  npx --no-install tsc -p web/tsconfig.json || die "TypeScript check of the web portal failed"
  npx --no-install vite build --config web/vite.config.ts --logLevel warn || die "web portal build failed"
}
