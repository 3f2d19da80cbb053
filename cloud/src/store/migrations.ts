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
];
