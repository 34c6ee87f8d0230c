import postgres from 'postgres'

/**
 * libpq's way of naming a Unix-domain socket in a URL, `postgres://user@localhost/db?host=/var/run/postgresql`,
 * which node-postgres (pg-boss) understands and postgres.js does not (it would send `host` to the server as a
 * setting and fail). Returns the URL without that parameter and the socket directory, for postgres.js's
 * `host` option. Any other URL is returned as it is.
 */
export function splitSocketHost(databaseUrl: string): { url: string; socketDir?: string } {
  let url: URL
  try {
    url = new URL(databaseUrl)
  } catch {
    return { url: databaseUrl }
  }
  const host = url.searchParams.get('host')
  if (!host?.startsWith('/')) return { url: databaseUrl }
  url.searchParams.delete('host')
  // libpq also takes the port as a parameter; it names the socket file (.s.PGSQL.<port>).
  const port = url.searchParams.get('port')
  if (port && /^\d+$/.test(port)) {
    url.port = port
    url.searchParams.delete('port')
  }
  return { url: url.toString(), socketDir: host }
}

/** postgres.js on a DATABASE_URL, a Unix-socket one in libpq's form included: every connection the project opens goes through here. */
export function openPostgres<T extends Record<string, postgres.PostgresType>>(databaseUrl: string, options: postgres.Options<T>) {
  const { url, socketDir } = splitSocketHost(databaseUrl)
  return postgres(url, socketDir ? { ...options, host: socketDir } : options)
}
