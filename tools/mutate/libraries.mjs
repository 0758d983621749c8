// The libraries `npm run mutate` covers, in the order it runs them, and the mutation score each must reach.
export const LIBRARIES = { domain: 85, storage: 75, webhooks: 75, 'read-model': 75 };

/** fast-check settings for the domain's property tests under mutation (libs/domain/test/property-runs.ts). */
export const PROPERTY_ENV = { SNAPCAT_PROPERTY_RUNS: '10', SNAPCAT_PROPERTY_SEED: '4' };
