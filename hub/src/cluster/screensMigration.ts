/**
 * "Dismissed by everyone" per screen on a cluster (./pgHistory.ts, docs/cluster.md): which screens
 * (hub connections, by MQTT client id, on any hub) were shown each ring, and which screen each
 * dismissal came from. Beside `history_ring_shown` and `history_dismissals` (members), which stay
 * as they are. Version 9, in a file of its own.
 */
export const SCREENS_MIGRATION = {
  version: 9,
  what: 'the screens shown each ring and the screen of each dismissal (dismissed by everyone, per screen, across hubs)',
  sql: `
CREATE TABLE history_ring_shown_screens (
  event_id  BIGINT NOT NULL REFERENCES history_events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  screen    TEXT NOT NULL,
  PRIMARY KEY (event_id, screen)
);
-- screen '*': the dismissal named none (an older page, a ring the doorbell kept): all of that member's screens.
CREATE TABLE history_dismissed_screens (
  event_id  BIGINT NOT NULL REFERENCES history_events (id) ON DELETE CASCADE,
  member_id TEXT NOT NULL,
  screen    TEXT NOT NULL,
  PRIMARY KEY (event_id, member_id, screen)
);
DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'doorbell_hub') THEN
    GRANT SELECT, INSERT, UPDATE, DELETE ON history_ring_shown_screens, history_dismissed_screens TO doorbell_hub;
  END IF;
END $$;`
} as const
