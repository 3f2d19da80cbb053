// Forward-only schema migrations, numbered by position (user_version = how many have run).
// Never edit one that has shipped; append a new one.

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sites (
     id         TEXT    PRIMARY KEY,
     name       TEXT    NOT NULL UNIQUE,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE claim_codes (
     code_hash  TEXT    PRIMARY KEY,
     site_id    TEXT    NOT NULL REFERENCES sites (id),
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     used_at    INTEGER,
     device_id  TEXT
   );
   CREATE TABLE devices (
     id           TEXT    PRIMARY KEY,
     site_id      TEXT    NOT NULL REFERENCES sites (id),
     hardware_id  TEXT    NOT NULL,
     name         TEXT    NOT NULL,
     created_at   INTEGER NOT NULL,
     claimed_at   INTEGER NOT NULL,
     last_seen_at INTEGER,
     revoked_at   INTEGER,
     UNIQUE (site_id, hardware_id)
   );
   CREATE TABLE device_tokens (
     token_hash TEXT    PRIMARY KEY,
     device_id  TEXT    NOT NULL REFERENCES devices (id),
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE INDEX device_tokens_device ON device_tokens (device_id);
   CREATE TABLE cameras (
     id         TEXT    PRIMARY KEY,
     device_id  TEXT    NOT NULL REFERENCES devices (id),
     key        TEXT    NOT NULL,
     name       TEXT,
     created_at INTEGER NOT NULL,
     UNIQUE (device_id, key)
   );
   CREATE TABLE frames (
     id          TEXT    PRIMARY KEY,
     device_id   TEXT    NOT NULL REFERENCES devices (id),
     camera_id   TEXT    NOT NULL REFERENCES cameras (id),
     captured_at INTEGER NOT NULL,
     variant     TEXT    NOT NULL CHECK (variant IN ('compressed', 'original')),
     bytes       INTEGER NOT NULL,
     sha256      TEXT    NOT NULL,
     dhash       TEXT    NOT NULL,
     object_key  TEXT    NOT NULL,
     received_at INTEGER NOT NULL,
     UNIQUE (device_id, camera_id, captured_at, variant)
   );
   CREATE INDEX frames_camera_time ON frames (camera_id, captured_at DESC);
   CREATE TABLE uploads (
     id           TEXT    PRIMARY KEY,
     device_id    TEXT    NOT NULL REFERENCES devices (id),
     camera_id    TEXT    NOT NULL REFERENCES cameras (id),
     captured_at  INTEGER NOT NULL,
     variant      TEXT    NOT NULL CHECK (variant IN ('compressed', 'original')),
     bytes        INTEGER NOT NULL,
     sha256       TEXT    NOT NULL,
     dhash        TEXT    NOT NULL,
     object_key   TEXT    NOT NULL UNIQUE,
     created_at   INTEGER NOT NULL,
     completed_at INTEGER,
     frame_id     TEXT    REFERENCES frames (id)
   );
   CREATE INDEX uploads_frame_identity ON uploads (device_id, camera_id, captured_at, variant);`,
  // 2: fleet watch (issue 4). device_health holds each device's latest heartbeat in full;
  // heartbeats keeps a short, pruned history of queue depths per variant; camera_watch is what
  // the watch knows per camera without scanning frames. Alert kinds are not constrained here:
  // scene events will add their own. At most one open alert per (kind, device, camera).
  `CREATE TABLE device_health (
     device_id        TEXT    PRIMARY KEY REFERENCES devices (id),
     received_at      INTEGER NOT NULL,
     sent_at          INTEGER NOT NULL,
     verdict          TEXT    NOT NULL,
     verdict_reason   TEXT,
     agent_version    TEXT    NOT NULL,
     firmware_version TEXT,
     firmware_slot    TEXT,
     queue_depth      INTEGER NOT NULL,
     oldest_queued_ms INTEGER,
     cameras_total    INTEGER NOT NULL,
     cameras_ok       INTEGER NOT NULL,
     cameras_failing  INTEGER NOT NULL,
     cameras_stopped  INTEGER NOT NULL,
     report           TEXT    NOT NULL
   );
   CREATE TABLE heartbeats (
     id                   INTEGER PRIMARY KEY,
     device_id            TEXT    NOT NULL REFERENCES devices (id),
     received_at          INTEGER NOT NULL,
     verdict              TEXT    NOT NULL,
     compressed_depth     INTEGER NOT NULL,
     original_depth       INTEGER NOT NULL,
     compressed_oldest_ms INTEGER,
     original_oldest_ms   INTEGER
   );
   CREATE INDEX heartbeats_device ON heartbeats (device_id, id);
   CREATE TABLE camera_watch (
     camera_id               TEXT    PRIMARY KEY REFERENCES cameras (id),
     device_id               TEXT    NOT NULL REFERENCES devices (id),
     reported_state          TEXT,
     reported_name           TEXT,
     reported_error          TEXT,
     reported_capture_at     INTEGER,
     reported_failures       INTEGER,
     last_frame_at           INTEGER,
     frozen_ref_dhash        TEXT,
     frozen_count            INTEGER NOT NULL DEFAULT 0,
     frozen_last_captured_at INTEGER
   );
   CREATE INDEX camera_watch_device ON camera_watch (device_id);
   CREATE TABLE alerts (
     id         TEXT    PRIMARY KEY,
     kind       TEXT    NOT NULL,
     device_id  TEXT    NOT NULL REFERENCES devices (id),
     camera_id  TEXT    REFERENCES cameras (id),
     state      TEXT    NOT NULL CHECK (state IN ('open', 'closed')),
     opened_at  INTEGER NOT NULL,
     closed_at  INTEGER,
     title      TEXT    NOT NULL,
     detail     TEXT    NOT NULL,
     diagnosis  TEXT,
     resolution TEXT
   );
   CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, device_id, coalesce(camera_id, '')) WHERE state = 'open';
   CREATE INDEX alerts_device ON alerts (device_id, state);
   CREATE INDEX alerts_opened ON alerts (opened_at);
   CREATE TABLE notifications (
     id              TEXT    PRIMARY KEY,
     alert_id        TEXT    NOT NULL REFERENCES alerts (id),
     event           TEXT    NOT NULL,
     target          TEXT    NOT NULL,
     payload         TEXT    NOT NULL,
     state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
     attempts        INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER NOT NULL,
     last_error      TEXT,
     created_at      INTEGER NOT NULL,
     delivered_at    INTEGER,
     failed_at       INTEGER
   );
   CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE state = 'pending';
   CREATE INDEX notifications_alert ON notifications (alert_id);`,
  // 3: camera inventory (issue 5). One row per camera the device's inventory has listed, keyed
  // by the camera record its uploads use, so frames and inventory meet on one camera.
  // unlisted_at is set when a later inventory leaves the camera out: the row (and the camera's
  // frames) stay. source and capture_path are checked by the route, not here, so a new capture
  // path needs no migration. devices.inventory_received_at: when the device last sent one.
  `ALTER TABLE devices ADD COLUMN inventory_received_at INTEGER;
   CREATE TABLE camera_inventory (
     camera_id    TEXT    PRIMARY KEY REFERENCES cameras (id),
     device_id    TEXT    NOT NULL REFERENCES devices (id),
     name         TEXT    NOT NULL,
     source       TEXT    NOT NULL,
     manufacturer TEXT,
     model        TEXT,
     firmware     TEXT,
     serial       TEXT,
     mac          TEXT,
     address      TEXT,
     capture_path TEXT    NOT NULL,
     present      INTEGER NOT NULL CHECK (present IN (0, 1)),
     last_error   TEXT,
     last_seen_at INTEGER,
     received_at  INTEGER NOT NULL,
     unlisted_at  INTEGER
   );
   CREATE INDEX camera_inventory_device ON camera_inventory (device_id);`,
  // 4: firmware (issue 6). A release is one uploaded RAUC bundle (version unique; verified = its
  // signature was checked against the configured keyring). A deployment targets a set of devices
  // with one release; firmware_rollout holds each targeted device's place in it: 'waiting' until
  // a slot frees, 'started' once its target named the release, then what the device reports.
  // A device in several deployments follows the newest.
  `CREATE TABLE firmware_releases (
     id         TEXT    PRIMARY KEY,
     version    TEXT    NOT NULL UNIQUE,
     bytes      INTEGER NOT NULL,
     sha256     TEXT    NOT NULL,
     object_key TEXT    NOT NULL,
     verified   INTEGER NOT NULL CHECK (verified IN (0, 1)),
     created_at INTEGER NOT NULL
   );
   CREATE TABLE firmware_deployments (
     id                TEXT    PRIMARY KEY,
     release_id        TEXT    NOT NULL REFERENCES firmware_releases (id),
     site_id           TEXT    REFERENCES sites (id),
     max_concurrent    INTEGER NOT NULL,
     failure_threshold INTEGER NOT NULL,
     state             TEXT    NOT NULL CHECK (state IN ('active', 'halted')),
     halt_reason       TEXT,
     halted_at         INTEGER,
     created_at        INTEGER NOT NULL
   );
   CREATE TABLE firmware_rollout (
     deployment_id TEXT    NOT NULL REFERENCES firmware_deployments (id),
     device_id     TEXT    NOT NULL REFERENCES devices (id),
     seq           INTEGER NOT NULL,
     state         TEXT    NOT NULL CHECK (state IN ('waiting', 'started', 'downloading', 'installing', 'trial', 'committed', 'reverted', 'failed')),
     reason        TEXT,
     started_at    INTEGER,
     updated_at    INTEGER NOT NULL,
     reported_at   INTEGER,
     PRIMARY KEY (deployment_id, device_id)
   );
   CREATE INDEX firmware_rollout_device ON firmware_rollout (device_id);`,
  // 5: analysis, events, people (issue 8).
  // users/sessions: dashboard logins (passwords as scrypt strings; sessions by token hash).
  // analysis_settings: per-site and per-camera overrides of the analysis and alert defaults
  // (JSON, checked by the route that writes it). jobs: the durable work queue; a 'frame' job
  // is enqueued in the transaction that records a compressed frame, a 'batch' job when a
  // camera's batch closes; a running job whose lease ran out is taken again, so a restart
  // loses no work. analysis_cameras: each camera's dedupe reference (its last analysed frame)
  // and counters. analysis_frames: what intake decided for each frame. analysis_batches: one
  // camera's changed frames analysed together. events: one per analysed batch (batch_id
  // unique, so a batch re-run after a crash cannot make a second). stream: everything the
  // live stream sends, numbered in commit order; Last-Event-ID replays from here.
  // alerts gain a level, acknowledgement, and the bookkeeping of scene incidents.
  `CREATE TABLE users (
     id            TEXT    PRIMARY KEY,
     name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
     password_hash TEXT    NOT NULL,
     role          TEXT    NOT NULL CHECK (role IN ('admin')),
     created_at    INTEGER NOT NULL,
     disabled_at   INTEGER,
     failed_logins INTEGER NOT NULL DEFAULT 0,
     locked_until  INTEGER
   );
   CREATE TABLE sessions (
     token_hash   TEXT    PRIMARY KEY,
     user_id      TEXT    NOT NULL REFERENCES users (id),
     created_at   INTEGER NOT NULL,
     expires_at   INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL
   );
   CREATE INDEX sessions_user ON sessions (user_id);
   CREATE TABLE analysis_settings (
     scope      TEXT    NOT NULL CHECK (scope IN ('site', 'camera')),
     scope_id   TEXT    NOT NULL,
     settings   TEXT    NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (scope, scope_id)
   );
   CREATE TABLE jobs (
     id          INTEGER PRIMARY KEY AUTOINCREMENT,
     kind        TEXT    NOT NULL CHECK (kind IN ('frame', 'batch')),
     ref         TEXT    NOT NULL,
     state       TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')),
     attempts    INTEGER NOT NULL DEFAULT 0,
     run_at      INTEGER NOT NULL,
     lease_until INTEGER,
     last_error  TEXT,
     created_at  INTEGER NOT NULL,
     updated_at  INTEGER NOT NULL,
     UNIQUE (kind, ref)
   );
   CREATE INDEX jobs_due ON jobs (kind, run_at) WHERE state IN ('pending', 'running');
   CREATE TABLE analysis_cameras (
     camera_id        TEXT    PRIMARY KEY REFERENCES cameras (id),
     ref_frame_id     TEXT    REFERENCES frames (id),
     ref_dhash        TEXT,
     ref_captured_at  INTEGER,
     open_batch_id    TEXT,
     frames_seen      INTEGER NOT NULL DEFAULT 0,
     frames_skipped   INTEGER NOT NULL DEFAULT 0,
     frames_invalid   INTEGER NOT NULL DEFAULT 0,
     frames_batched   INTEGER NOT NULL DEFAULT 0
   );
   CREATE TABLE analysis_batches (
     id                TEXT    PRIMARY KEY,
     camera_id         TEXT    NOT NULL REFERENCES cameras (id),
     device_id         TEXT    NOT NULL REFERENCES devices (id),
     state             TEXT    NOT NULL CHECK (state IN ('open', 'ready', 'done')),
     first_captured_at INTEGER NOT NULL,
     last_captured_at  INTEGER NOT NULL,
     frame_count       INTEGER NOT NULL,
     opened_at         INTEGER NOT NULL,
     last_added_at     INTEGER NOT NULL,
     close_at          INTEGER NOT NULL,
     close_reason      TEXT,
     outcome           TEXT,
     done_at           INTEGER
   );
   CREATE INDEX analysis_batches_open ON analysis_batches (close_at) WHERE state = 'open';
   CREATE TABLE analysis_frames (
     frame_id    TEXT    PRIMARY KEY REFERENCES frames (id),
     camera_id   TEXT    NOT NULL REFERENCES cameras (id),
     captured_at INTEGER NOT NULL,
     state       TEXT    NOT NULL CHECK (state IN ('invalid', 'duplicate', 'batched')),
     distance    INTEGER,
     reason      TEXT,
     batch_id    TEXT    REFERENCES analysis_batches (id),
     detections  TEXT,
     created_at  INTEGER NOT NULL
   );
   CREATE INDEX analysis_frames_batch ON analysis_frames (batch_id);
   CREATE INDEX analysis_frames_camera ON analysis_frames (camera_id, captured_at);
   CREATE TABLE events (
     id           TEXT    PRIMARY KEY,
     batch_id     TEXT    NOT NULL UNIQUE REFERENCES analysis_batches (id),
     camera_id    TEXT    NOT NULL REFERENCES cameras (id),
     device_id    TEXT    NOT NULL REFERENCES devices (id),
     started_at   INTEGER NOT NULL,
     ended_at     INTEGER NOT NULL,
     risk_score   INTEGER NOT NULL,
     level        TEXT    NOT NULL CHECK (level IN ('low', 'medium', 'high', 'critical')),
     summary      TEXT    NOT NULL,
     reasoning    TEXT    NOT NULL,
     observations TEXT    NOT NULL,
     detections   TEXT    NOT NULL,
     source       TEXT    NOT NULL CHECK (source IN ('vision', 'detector')),
     model        TEXT,
     off_spec     TEXT,
     analysis_error TEXT,
     alert_id     TEXT    REFERENCES alerts (id),
     created_at   INTEGER NOT NULL
   );
   CREATE INDEX events_camera ON events (camera_id, started_at DESC);
   CREATE INDEX events_created ON events (created_at DESC);
   CREATE TABLE stream (
     seq        INTEGER PRIMARY KEY AUTOINCREMENT,
     type       TEXT    NOT NULL,
     payload    TEXT    NOT NULL,
     created_at INTEGER NOT NULL
   );
   ALTER TABLE alerts ADD COLUMN level TEXT NOT NULL DEFAULT 'high' CHECK (level IN ('low', 'medium', 'high', 'critical'));
   ALTER TABLE alerts ADD COLUMN acknowledged_at INTEGER;
   ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
   ALTER TABLE alerts ADD COLUMN last_event_at INTEGER;
   ALTER TABLE alerts ADD COLUMN event_count INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE alerts ADD COLUMN last_notified_at INTEGER;`,
  // 6: leases, so background work that must run once (the fleet watch's sweep, alert sweeps)
  // runs in one process at a time when several cloud replicas share a database.
  `CREATE TABLE leases (
     name   TEXT    PRIMARY KEY,
     holder TEXT    NOT NULL,
     until  INTEGER NOT NULL
   );`,
];
