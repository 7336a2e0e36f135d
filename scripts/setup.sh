#!/usr/bin/env bash
# Installs everything labforge needs to run (Debian packages, npm packages), builds it and the test guest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
check_node
ensure_debian_packages "${RUNTIME_PACKAGES[@]}"
ensure_npm_dependencies
build
# The built-in image of a fresh install (and of the tests): a small Linux guest built from Debian packages.
if ! bash "$LABFORGE_ROOT/scripts/build-test-guest.sh"; then
  say "warning: the test guest was not built (see above); labforge runs without its built-in image"
fi
