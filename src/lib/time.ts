// Time helpers every layer may use.

/** Now, as the ISO 8601 text the database and the API store. */
export const nowIso = (): string => new Date().toISOString();
