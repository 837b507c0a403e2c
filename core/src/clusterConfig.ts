import { z } from 'zod'

/**
 * A hub's `cluster` section (docs/cluster.md): this hub is one of several behind a load balancer,
 * sharing Redis (the broker's messages, retained state and sessions; revocation broadcast) and
 * PostgreSQL (members, invites, the audit log). Absent: a single hub on node:sqlite, as before.
 */
export const ClusterConfig = z.strictObject({
  /** This hub's name in the cluster: unique per node (logs, the broker's id, who sent a broadcast). */
  nodeId: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'a node id is 1-32 of a-z, 0-9 and "-", starting with a letter or digit'),
  redisUrl: z.string().regex(/^rediss?:\/\/\S+$/, 'redisUrl starts with redis:// or rediss://'),
  postgresUrl: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'postgresUrl starts with postgres:// or postgresql://'),
  /**
   * How long a hub waits for PostgreSQL before it refuses a sign-in or a pairing ("try later"):
   * the trust store's reads block the hub's event loop (as node:sqlite's do), so keep it short.
   */
  postgresTimeoutMs: z.number().int().min(100).max(30_000).default(2000)
})
export type ClusterConfig = z.infer<typeof ClusterConfig>
