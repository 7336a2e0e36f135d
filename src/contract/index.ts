// The wire contract of labforge's API: every request body and answer as a
// TypeBox schema with its TypeScript type (same name), the api-versions, the
// roles, the ARM error envelope and ARM ids. The routes declare their body
// and response schemas from here (so GET /openapi.json is complete and
// answers are serialised by compiled schemas); the command-line client, the
// factory, the portal and the tests take their types from here.
//
// Rules: nothing here imports Node-only code, services or the database (the
// portal bundles it for the browser); a constant is written once.
export * from './api-versions.js';
export * from './arm.js';
export * from './arm-id.js';
export * from './compute/galleries.js';
export * from './compute/images.js';
export * from './compute/versions.js';
export * from './compute/virtual-machines.js';
export * from './core/accounts.js';
export * from './core/hosts.js';
export * from './core/image-stores.js';
export * from './core/operations.js';
export * from './core/tokens.js';
export * from './labservices/lab-plans.js';
export * from './labservices/lab-users.js';
export * from './labservices/lab-vms.js';
export * from './labservices/labs.js';
export * from './labservices/profiles.js';
export * from './labservices/schedules.js';
export * from './resources/resource-groups.js';
export * from './resources/subscriptions.js';
export * from './roles.js';
export * from './schema.js';
