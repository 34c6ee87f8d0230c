import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  // The service's own record of applied migrations (src/db/migrate.ts says why not drizzle's shared default).
  migrations: { schema: 'drizzle', table: '__tx_broadcaster_migrations' },
})
