/**
 * The event history on PostgreSQL (./pgHistory.ts): its migration step, kept in a file of its own
 * so that the steps other parts add to migrations.ts stay apart. Version 4 (2 is the shared
 * per-hub state's, 3 the replaced grants', 5 the clip setting's). The same columns as the single hub's history.db, with the pictures in a
 * table of their own (bytea), deleted with their event.
 */
export const HISTORY_MIGRATION = {
  version: 4,
  what: 'the event history, its pictures, seen marks, dismissals and who was shown each ring',
  sql: `
CREATE TABLE history_events (
  id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind           TEXT NOT NULL CHECK (kind IN ('ring', 'door', 'talk')),
  source         TEXT NOT NULL UNIQUE,
  device_id      TEXT NOT NULL,
  device_name    TEXT NOT NULL,
  at             BIGINT NOT NULL,
  outcome        TEXT NOT NULL,
  who            TEXT NOT NULL DEFAULT '[]',
  duration_ms    BIGINT,
  detail         TEXT,
  ring_id        TEXT,
  snapshot_bytes INTEGER,
  snapshot_seq   BIGINT,
  no_picture     TEXT
);
CREATE INDEX history_events_at ON history_events (at DESC, id DESC);
CREATE INDEX history_events_device_at ON history_events (device_id, at DESC, id DESC);
CREATE TABLE history_pictures (
  event_id BIGINT PRIMARY KEY REFERENCES history_events (id) ON DELETE CASCADE,
  jpeg     BYTEA NOT NULL
);
CREATE TABLE history_seen (
  member_id TEXT NOT NULL,
  event_id  BIGINT NOT NULL REFERENCES history_events (id) ON DELETE CASCADE,
  PRIMARY KEY (member_id, event_id)
);
CREATE TABLE history_dismissals (
  event_id    BIGINT NOT NULL REFERENCES history_events (id) ON DELETE CASCADE,
  member_id   TEXT NOT NULL,
  member_name TEXT NOT NULL,
  at          BIGINT NOT NULL,
  PRIMARY KEY (event_id, member_id)
);
-- The members whose screens were shown a ring (connected when it rang), for "dismissed by everyone".
CREATE TABLE history_ring_shown (
  event_id  BIGINT NOT NULL REFERENCES history_events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  PRIMARY KEY (event_id, member_id)
);
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON history_events, history_pictures, history_seen, history_dismissals, history_ring_shown TO doorbell_hub;
  END IF;
END $$;`
} as const
