#!/usr/bin/env bash
# Runs labforge's benchmarks (`npm run bench`): builds dist/ when it is
# missing or older than src/, installs the baseline tools it compares
# against (qemu-img, rsync), then runs each benchmark on the compiled code.
#   bash bench/run.sh                 every benchmark
#   bash bench/run.sh imagestore      one of: api-throughput, chunking, imagestore, memory, vm, labs, factory
#   bash bench/run.sh --save          arguments (after the name, if any) go to each benchmark
# Set LABFORGE_BENCH_PG_URL=postgres://user@127.0.0.1:5432/postgres to add
# PostgreSQL to the API benchmark (it creates and drops a scratch database).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" rsync

if [ ! -f dist/server.js ] || [ -n "$(find src -newer dist/server.js -print -quit)" ]; then
  echo "Building dist/ (npx tsc -p tsconfig.json)" >&2
  npx --no-install tsc -p tsconfig.json
fi

which=all
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  which="$1"
  shift
fi
case "$which" in
  all) names=(api-throughput chunking imagestore memory vm labs factory) ;;
  api-throughput | chunking | imagestore | memory | vm | labs | factory) names=("$which") ;;
  *) echo "unknown benchmark '$which': use api-throughput, chunking, imagestore, memory, vm, labs, factory or all" >&2; exit 2 ;;
esac
for name in "${names[@]}"; do
  echo "== bench/$name.mjs" >&2
  node "bench/$name.mjs" "$@"
done
