/**
 * Imported first by the entry points, before any library loads: libraries read NODE_ENV once, at
 * import. graphql-js in particular checks every `instanceof` in its type checks twice over (looking
 * for a second copy of graphql) unless NODE_ENV is "production"; under load that was about 2 % of the
 * event loop. An explicit NODE_ENV (e.g. "development", or vitest's "test") is left as it is.
 */
process.env.NODE_ENV ??= 'production'
