import pg from 'pg'
import { SHARED_STATE_MIGRATION } from './sharedStateMigration'
import { HISTORY_MIGRATION } from './pgHistoryMigration'
import { CLIPS_MIGRATION, PUSH_MIGRATION, REPLIES_SEQ_MIGRATION } from './shareMigrations'
import { SCREENS_MIGRATION } from './screensMigration'

/** One PostgreSQL advisory lock for the schema: several hubs starting at once migrate one at a time. */
export const MIGRATION_LOCK = 0x646f6f72 // "door"
/** Taken inside each trust transaction: the cluster's hubs run them one at a time, as BEGIN IMMEDIATE does on one hub. */
export const TRUST_LOCK = 0x74727573 // "trus"

const APPEND_ONLY = 'the audit log is append-only'

/**
 * The schema, one step per version; never edit a step that shipped, add one. Sorted by version,
 * so steps kept in files of their own (pgHistoryMigration.ts) may be listed in any order.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number, what: string, sql: string }> = [
  {
    version: 1,
    what: 'members, invites, the audit log, meta',
    sql: `
CREATE TABLE members (
  id          TEXT PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('viewer', 'device', 'integration')),
  subject     TEXT NOT NULL,
  name        TEXT NOT NULL,
  role        TEXT CHECK (role IN ('owner', 'resident', 'guest', 'operator')),
  door        BOOLEAN NOT NULL,
  zones       JSONB NOT NULL,
  talk        BOOLEAN,
  talk_zones  JSONB,
  key         TEXT,
  secret_hash BYTEA NOT NULL,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT,
  revoked_at  BIGINT
);
CREATE INDEX members_by_subject ON members (kind, subject);
CREATE TABLE invites (
  code_hash    BYTEA PRIMARY KEY,
  kind         TEXT NOT NULL CHECK (kind IN ('viewer', 'device')),
  role         TEXT CHECK (role IN ('owner', 'resident', 'guest', 'operator')),
  door         BOOLEAN NOT NULL,
  zones        JSONB NOT NULL,
  talk         BOOLEAN,
  talk_zones   JSONB,
  device_id    TEXT,
  access_hours DOUBLE PRECISION,
  expires_at   BIGINT NOT NULL,
  used_at      BIGINT,
  created_by   TEXT
);
CREATE TABLE audit (
  seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at        BIGINT NOT NULL,
  kind      TEXT NOT NULL,
  outcome   TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied')),
  reason    TEXT NOT NULL,
  actor     TEXT NOT NULL,
  device_id TEXT,
  message   TEXT NOT NULL,
  source_id TEXT UNIQUE,
  path      TEXT CHECK (path IN ('lan', 'direct', 'cloud'))
);
CREATE FUNCTION audit_append_only () RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '${APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit FROM PUBLIC;
-- A role for hubs that do not own the schema: it may read and add audit lines, never change them.
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON members, invites TO doorbell_hub;
    GRANT SELECT, INSERT ON audit TO doorbell_hub;
  END IF;
END $$;
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);`
  },
  SHARED_STATE_MIGRATION,
  {
    version: 3,
    what: 'members.grants_from (a member\'s rights changed: its older grants are void)',
    sql: 'ALTER TABLE members ADD COLUMN IF NOT EXISTS grants_from BIGINT;'
  },
  HISTORY_MIGRATION,
  {
    version: 5,
    what: 'doorbell_settings.clip (the owner\'s "record a clip of each ring")',
    sql: 'ALTER TABLE doorbell_settings ADD COLUMN IF NOT EXISTS clip BOOLEAN;'
  },
  PUSH_MIGRATION,
  CLIPS_MIGRATION,
  REPLIES_SEQ_MIGRATION,
  SCREENS_MIGRATION
].sort((a, b) => a.version - b.version)

export interface Migrated {
  /** The versions this hub applied (none when another hub had already done it). */
  applied: number[]
  version: number
}

/**
 * Brings the database to the latest schema: under a session advisory lock (a second hub waits,
 * then finds nothing to do), each step in a transaction of its own with its row in
 * doorbell_migrations. A database from a newer hub is refused, as the sqlite store refuses one.
 */
export async function migrate (url: string, nodeId: string, o: { timeoutMs: number }): Promise<Migrated> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: o.timeoutMs, application_name: `doorbell-hub ${nodeId} migrate` })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS doorbell_migrations (
        version INTEGER PRIMARY KEY, what TEXT NOT NULL, node TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      const done = new Set((await client.query<{ version: number }>('SELECT version FROM doorbell_migrations')).rows.map((r) => r.version))
      const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version
      const newest = Math.max(0, ...done)
      if (newest > latest) throw new Error(`the PostgreSQL database was migrated by a newer hub (schema ${newest}, this hub knows ${latest})`)
      const applied: number[] = []
      for (const step of MIGRATIONS) {
        if (done.has(step.version)) continue
        await client.query('BEGIN')
        try {
          await client.query(step.sql)
          await client.query('INSERT INTO doorbell_migrations (version, what, node) VALUES ($1, $2, $3)', [step.version, step.what, nodeId])
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK')
          throw new Error(`migration ${step.version} (${step.what}) failed: ${(err as Error).message}`, { cause: err })
        }
        applied.push(step.version)
      }
      return { applied, version: latest }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    await client.end()
  }
}
