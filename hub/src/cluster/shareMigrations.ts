/**
 * What a single hub kept in its data folder and a cluster now shares (./pgPush.ts, ./pgClips.ts,
 * the quick replies' seq): its migration steps, in a file of their own so that each part's steps
 * stay apart. Version 6: Web Push; 7: ring clips; 8: the quick replies' seq.
 */
export const PUSH_MIGRATION = {
  version: 6,
  what: 'Web Push: the VAPID key (sealed), the screens\' subscriptions, the rings pushed',
  sql: `
-- One row: the cluster's VAPID key pair, the private key sealed (AES-256-GCM) under a key derived from the home key.
CREATE TABLE push_vapid (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  sealed     BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE push_subscriptions (
  endpoint   TEXT PRIMARY KEY,
  member_id  TEXT NOT NULL,
  p256dh     TEXT NOT NULL,
  auth       TEXT NOT NULL,
  screen     TEXT,
  created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_member ON push_subscriptions (member_id, created_at);
-- A ring pushed: the hub that claims it first pushes it (a ring that reaches two hubs is pushed once).
CREATE TABLE push_rings (
  ring TEXT PRIMARY KEY,
  at   BIGINT NOT NULL
);
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON push_vapid, push_subscriptions, push_rings TO doorbell_hub;
  END IF;
END $$;`
} as const

export const CLIPS_MIGRATION = {
  version: 7,
  what: 'ring clips: each event\'s clip (or why there is none) and its bytes in parts',
  sql: `
CREATE TABLE history_clips (
  event_id  BIGINT PRIMARY KEY REFERENCES history_events (id) ON DELETE CASCADE,
  container TEXT CHECK (container IN ('mp4', 'webm')),
  seconds   DOUBLE PRECISION,
  bytes     BIGINT,
  failed    TEXT,
  CHECK ((failed IS NULL) = (bytes IS NOT NULL))
);
-- The video in parts (CLIP_ROW_BYTES each), so a Range request reads only the parts it covers.
CREATE TABLE history_clip_parts (
  event_id BIGINT NOT NULL REFERENCES history_clips (event_id) ON DELETE CASCADE,
  part     INTEGER NOT NULL CHECK (part >= 0),
  data     BYTEA NOT NULL,
  PRIMARY KEY (event_id, part)
);
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON history_clips, history_clip_parts TO doorbell_hub;
  END IF;
END $$;`
} as const

export const REPLIES_SEQ_MIGRATION = {
  version: 8,
  what: 'shared_documents.seq (the quick replies\' stamp: a list is kept only over a lower one)',
  // 0 for a row kept before: any stamped list is newer than it.
  sql: 'ALTER TABLE shared_documents ADD COLUMN IF NOT EXISTS seq BIGINT NOT NULL DEFAULT 0;'
} as const
