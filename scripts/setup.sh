#!/usr/bin/env bash
# Installs everything labforge needs to run (Debian packages, npm packages) and builds it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
check_node
ensure_debian_packages "${RUNTIME_PACKAGES[@]}"
ensure_npm_dependencies
build
