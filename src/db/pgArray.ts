/**
 * A Postgres array literal for `${pgArray(values)}::type[]`. postgres.js guesses
 * an array's element type from its first value and gets numeric strings and
 * booleans wrong; a text literal cast on the server is exact for every type.
 */
export function pgArray(values: ReadonlyArray<string | number | bigint | boolean | null | undefined>): string {
  return `{${values
    .map((v) => (v === null || v === undefined ? 'NULL' : `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`))
    .join(',')}}`
}
