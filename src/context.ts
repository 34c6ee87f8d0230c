import type PgBoss from 'pg-boss'
import type { ChainClients } from './chain/createChainClients.ts'
import type { FileConfig } from './config/schema.ts'
import type { Db } from './db/connect.ts'
import type { Logger } from './common/logger.ts'
import type { SignerRegistry } from './signers/loadSigners.ts'
import type { InFlightLimiter } from './api/inFlightLimit.ts'
import type { ApiLoadMonitor } from './api/apiLoad.ts'
import type { Metrics } from './metrics/metrics.ts'
import type { TransactionUpdates } from './events/transactionUpdates.ts'

/**
 * What every stage is given (Ponder's "common"): built once by the composition
 * root in service.ts, passed as a parameter, so tests can build their own.
 */
export type ServiceContext = {
  config: FileConfig
  devMode: boolean
  db: Db
  boss: PgBoss
  log: Logger
  chains: Map<number, ChainClients>
  signers: SignerRegistry
  /** Change feed for subscriptions (Postgres LISTEN/NOTIFY, so it spans instances). */
  updates: TransactionUpdates
  /** Wakes the sign stage for a signer after new work was committed. */
  kickSigner: (chainId: number, signer: string) => void
  /** Prometheus metrics (metrics/metrics.ts); optional so a test's context needs none. */
  metrics?: Metrics
  /** Per-key cap on unfinished transactions, checked by acceptTransaction (api/inFlightLimit.ts). */
  inFlight?: InFlightLimiter
  /** Requests in progress and the loop's load: the sign stage gives way to a busy API (core/apiFirst.ts). */
  apiLoad?: ApiLoadMonitor
}
