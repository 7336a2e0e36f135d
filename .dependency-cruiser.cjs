// The dependency rules of labforge's layers, checked by `bash scripts/test.sh`
// (docs/ARCHITECTURE.md draws them). A violation names its rule and the import.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'Import cycles make a module impossible to understand (or test) alone: break them with an interface or by moving code down a layer.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'services-never-import-api',
      severity: 'error',
      comment: 'Services hold the rules; the HTTP layer calls them, never the other way round.',
      from: { path: '^src/services/' },
      to: { path: '^src/api/' },
    },
    {
      name: 'lower-layers-never-import-services-or-api',
      severity: 'error',
      comment: 'imagestore, diskformat, compute, operations, db, repositories, lib and config are below the services: they must not reach up.',
      from: { path: '^src/(imagestore|diskformat|compute|operations|db|repositories|lib|config|tls)/' },
      to: { path: '^src/(services|api|cli|client|factory)/' },
    },
    {
      name: 'repositories-only-below',
      severity: 'error',
      comment: 'Repositories speak to the database and map rows; they do not start drivers, read disks or images.',
      from: { path: '^src/repositories/' },
      to: { path: '^src/(imagestore|diskformat|operations)/' },
    },
    {
      name: 'lib-imports-nothing-of-ours',
      severity: 'error',
      comment: 'src/lib holds small helpers every layer may use, so it uses no other layer.',
      from: { path: '^src/lib/' },
      to: { path: '^src/(?!lib/)' },
    },
    {
      name: 'contract-imports-only-lib',
      severity: 'error',
      comment: 'The wire contract is shared with the browser portal: it may use src/lib helpers and typebox, nothing of the server.',
      from: { path: '^src/contract/' },
      to: { path: '^src/(?!contract/|lib/)' },
    },
    {
      name: 'web-imports-only-contract',
      severity: 'error',
      comment: 'The portal is built for the browser: from src/ it may import the wire contract (and the small helpers it uses) only.',
      from: { path: '^web/src/' },
      to: { path: '^src/(?!contract/|lib/)' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing is a typo or a missing package.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts'],
    },
    exclude: { path: '(^|/)(node_modules|dist)/' },
  },
};
