/**
 * The state each hub used to keep for itself, shared (./pgSharedState.ts): its migration step, in
 * a file of its own so that each part's steps stay apart. Version 2 (3: replaced grants; 4: the event history).
 */
export const SHARED_STATE_MIGRATION = {
  version: 2,
  what: 'the owner\'s per-doorbell settings, quick replies, Home Assistant\'s sealed keys and broker settings',
  sql: `
CREATE TABLE doorbell_settings (
  device_id                 TEXT PRIMARY KEY,
  accept_unsigned_open_door BOOLEAN,
  live_preview              BOOLEAN,
  -- Grows by one with each change through any hub: the database's number, never a hub's.
  seq                       BIGINT NOT NULL CHECK (seq >= 1),
  at                        BIGINT NOT NULL
);
-- One row per shared document (the quick replies as the owner signed them; Home Assistant's broker).
CREATE TABLE shared_documents (
  name  TEXT PRIMARY KEY,
  value JSONB NOT NULL,
  at    BIGINT NOT NULL
);
-- Home Assistant's integration keys, each sealed (AES-256-GCM) with a key derived from the home key: never in clear.
CREATE TABLE integration_keys (
  id         TEXT PRIMARY KEY,
  sealed     BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON doorbell_settings, shared_documents, integration_keys TO doorbell_hub;
  END IF;
END $$;`
}
