#!/usr/bin/env bash
# Runs the whole test suite: sets up, builds, lints, starts a throwaway
# PostgreSQL on a loopback port, runs every test against it and SQLite, and
# ends with one line "N passed, N failed".
set -uo pipefail
. "$(dirname "$0")/lib.sh"
check_node
ensure_debian_packages "${RUNTIME_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
ensure_npm_dependencies
build
cd "$LABFORGE_ROOT" || exit 1
# The VM tests boot this guest; built once here, before tests run in parallel.
bash scripts/build-test-guest.sh || die "the test guest could not be built (it needs root and Debian packages; see docs/TEST-GUEST.md)"

say "Checking lint and format"
lint_failed=0
npx --no-install biome ci src test bench web || lint_failed=1

# The layers' dependency rules (.dependency-cruiser.cjs): no import cycles, nothing below the services reaches up,
# the portal takes only the wire contract from src/. A violation prints the rule's name and the import.
say "Checking the dependency rules"
deps_failed=0
npx --no-install depcruise --config .dependency-cruiser.cjs --output-type err src web/src || deps_failed=1

# --- throwaway PostgreSQL ---
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pg_bin/initdb" ] || die "PostgreSQL's initdb was not found under /usr/lib/postgresql; install the postgresql package."
pg_dir=$(mktemp -d /tmp/labforge-pg.XXXXXX)
pg_port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$pg_dir"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap cleanup EXIT
say "Starting PostgreSQL on 127.0.0.1:$pg_port"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U labforge -A trust -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log"; die "initdb failed"; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$pg_dir/server.log"; die "PostgreSQL did not start"; }
export LABFORGE_TEST_PG_URL="postgres://labforge@127.0.0.1:$pg_port/postgres"

say "Running tests"
mkdir -p test-results
npx --no-install vitest run --reporter=default --reporter=json --outputFile=test-results/vitest.json "$@"
vitest_rc=$?

node -e '
const fs = require("fs");
let r = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0 };
try { r = JSON.parse(fs.readFileSync("test-results/vitest.json", "utf8")); } catch {}
const lint = Number(process.argv[1]);
const deps = Number(process.argv[3]);
const crashed = Number(process.argv[2]) !== 0 && r.numFailedTests === 0 ? 1 : 0;
if (crashed) console.log("the test runner stopped with an error before reporting failures (counted as one failure): see its output above");
const failed = r.numFailedTests + lint + crashed + deps;
const skipped = r.numPendingTests + r.numTodoTests;
if (lint) console.log("lint/format check failed (counted as one failure): run npx biome check --write src test bench web");
if (deps) console.log("dependency rules broken (counted as one failure): see the rule names above, and docs/ARCHITECTURE.md");
console.log(`${r.numPassedTests} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$lint_failed" "$vitest_rc" "$deps_failed"
[ "$vitest_rc" -eq 0 ] && [ "$lint_failed" -eq 0 ] && [ "$deps_failed" -eq 0 ]
