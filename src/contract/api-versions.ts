// The api-versions of the wire, written once: what the server accepts per
// API family (API_VERSIONS) and the one labforge's own clients send
// (API_VERSION: the command-line client, the factory, the portal, the tests).
// Plain constants with no imports, so the portal can take them without
// bundling any schema code.

/** Every api-version each API family accepts, newest first; any other answers 400 InvalidApiVersionParameter listing them. */
export const API_VERSIONS = {
  compute: ['2025-12-03', '2025-03-03', '2024-03-03', '2023-07-03', '2022-08-03', '2022-03-03', '2022-01-03', '2021-10-01', '2021-07-01'],
  resources: ['2025-04-01', '2024-11-01', '2024-07-01', '2024-03-01', '2023-07-01', '2022-09-01', '2021-04-01', '2020-06-01', '2019-10-01'],
  subscriptions: ['2022-12-01', '2021-01-01', '2020-01-01', '2016-06-01'],
  labforge: ['2026-11-01'],
  labServices: ['2022-08-01', '2023-06-07', '2021-11-15-preview', '2021-10-01-preview'],
  virtualMachines: [
    '2026-04-01',
    '2026-03-01',
    '2025-11-01',
    '2025-04-01',
    '2024-11-01',
    '2024-07-01',
    '2024-03-01',
    '2023-09-01',
    '2023-07-01',
    '2023-03-01',
    '2022-11-01',
  ],
} as const;

/** An API family: which api-version list a route accepts. */
export type ApiFamily = keyof typeof API_VERSIONS;

/** The api-version labforge's own clients send per family; each is one the server accepts (checked at compile time). */
export const API_VERSION = {
  compute: '2025-03-03',
  resources: '2021-04-01',
  subscriptions: '2022-12-01',
  labforge: '2026-11-01',
  virtualMachines: '2024-07-01',
  labServices: '2022-08-01',
} as const satisfies { [F in ApiFamily]: (typeof API_VERSIONS)[F][number] };
