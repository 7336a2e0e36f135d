#!/usr/bin/env bash
# Quick start: sets labforge up and runs the server on the embedded defaults.
# Extra arguments go to `labforge serve` (see `labforge serve --help`).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bash "$LABFORGE_ROOT/scripts/setup.sh"
exec node "$LABFORGE_ROOT/bin/labforge.js" serve "$@"
