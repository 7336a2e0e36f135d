#!/usr/bin/env node
// Entry point of the labforge command; the compiled CLI lives in dist/.
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('labforge is not built yet. Run: bash scripts/setup.sh');
    process.exit(70);
  }
  throw err;
});
