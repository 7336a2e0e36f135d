#!/usr/bin/env bash
# Runs every labforge benchmark (`npm run bench`): builds dist/ when it is
# missing or older than src/, then runs each benchmark on the compiled code.
# Arguments go to each benchmark, e.g. `npm run bench -- --save`.
# Set LABFORGE_BENCH_PG_URL=postgres://user@127.0.0.1:5432/postgres to add
# PostgreSQL (the benchmark creates and drops a scratch database there).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f dist/server.js ] || [ -n "$(find src -newer dist/server.js -print -quit)" ]; then
  echo "Building dist/ (npx tsc -p tsconfig.json)" >&2
  npx --no-install tsc -p tsconfig.json
fi

node bench/api-throughput.mjs "$@"
