-- Identity and access of the permission service: users, teams, projects, role bindings, grants,
-- and the token bookkeeping the gateway needs (revocations, per-user not-before). Secrets are
-- never stored: passwords as Argon2id strings, refresh and API tokens as SHA-256 hex.

CREATE TABLE users (
  username      TEXT        PRIMARY KEY,          -- [a-z][a-z0-9_.-]{0,62}
  seq           BIGSERIAL   UNIQUE,               -- keyset pagination order
  display_name  TEXT        NOT NULL DEFAULT '',
  email         TEXT        NOT NULL DEFAULT '',
  disabled      BOOLEAN     NOT NULL DEFAULT FALSE,
  admin         BOOLEAN     NOT NULL DEFAULT FALSE,
  password_hash TEXT        NOT NULL,             -- "$argon2id$v=19$..."
  etag          TEXT        NOT NULL DEFAULT '',
  create_time   TIMESTAMPTZ NOT NULL,
  update_time   TIMESTAMPTZ NOT NULL
);

CREATE TABLE teams (
  team_id      TEXT        PRIMARY KEY,           -- [a-z][a-z0-9-]{0,62}
  seq          BIGSERIAL   UNIQUE,
  display_name TEXT        NOT NULL DEFAULT '',
  description  TEXT        NOT NULL DEFAULT '',
  create_time  TIMESTAMPTZ NOT NULL,
  update_time  TIMESTAMPTZ NOT NULL
);

CREATE TABLE team_members (
  team_id  TEXT     NOT NULL REFERENCES teams ON DELETE CASCADE,
  username TEXT     NOT NULL REFERENCES users ON DELETE CASCADE,
  role     SMALLINT NOT NULL,  -- submarine.permission.v1.TeamRole value (1 member, 2 maintainer, 3 owner)
  PRIMARY KEY (team_id, username)
);
CREATE INDEX team_members_by_user ON team_members (username);

CREATE TABLE projects (
  project_id   TEXT        PRIMARY KEY,           -- [a-z][a-z0-9-]{0,62}
  seq          BIGSERIAL   UNIQUE,
  display_name TEXT        NOT NULL DEFAULT '',
  description  TEXT        NOT NULL DEFAULT '',
  owner        TEXT        NOT NULL,              -- "users/x" | "teams/y"
  etag         TEXT        NOT NULL DEFAULT '',
  create_time  TIMESTAMPTZ NOT NULL,
  update_time  TIMESTAMPTZ NOT NULL
);
CREATE INDEX projects_by_owner ON projects (owner);

-- A project role given to a subject ("users/u", "teams/t", "allUsers"); one per subject.
CREATE TABLE role_bindings (
  binding_id  TEXT        PRIMARY KEY,
  project_id  TEXT        NOT NULL REFERENCES projects ON DELETE CASCADE,
  subject     TEXT        NOT NULL,
  role        SMALLINT    NOT NULL,              -- submarine.permission.v1.Role value
  create_time TIMESTAMPTZ NOT NULL,
  UNIQUE (project_id, subject)
);
CREATE INDEX role_bindings_by_subject ON role_bindings (subject);

-- A permission on one resource inside a project; one per (resource, subject).
CREATE TABLE grants (
  grant_id    TEXT        PRIMARY KEY,
  project_id  TEXT        NOT NULL REFERENCES projects ON DELETE CASCADE,
  resource    TEXT        NOT NULL,              -- "projects/{p}/{collection}/{id}"
  subject     TEXT        NOT NULL,
  permission  SMALLINT    NOT NULL,              -- submarine.permission.v1.Permission value
  creator     TEXT        NOT NULL DEFAULT '',
  create_time TIMESTAMPTZ NOT NULL,
  UNIQUE (resource, subject)
);
CREATE INDEX grants_by_subject ON grants (subject, resource);
CREATE INDEX grants_by_project ON grants (project_id);

-- Long-lived API tokens (JWT typ "api"): metadata and the SHA-256 of the token only.
CREATE TABLE api_tokens (
  token_id     TEXT        PRIMARY KEY,           -- the JWT's jti
  username     TEXT        NOT NULL REFERENCES users ON DELETE CASCADE,
  display_name TEXT        NOT NULL DEFAULT '',
  token_hash   TEXT        NOT NULL,
  create_time  TIMESTAMPTZ NOT NULL,
  expire_time  TIMESTAMPTZ,                       -- NULL: never expires
  revoke_time  TIMESTAMPTZ
);
CREATE INDEX api_tokens_by_user ON api_tokens (username, create_time DESC);

-- Refresh tokens: single use (deleted when exchanged), SHA-256 only.
CREATE TABLE refresh_tokens (
  token_hash  TEXT        PRIMARY KEY,
  username    TEXT        NOT NULL REFERENCES users ON DELETE CASCADE,
  create_time TIMESTAMPTZ NOT NULL,
  expire_time TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (username);

-- Revoked signed tokens (access tokens at logout, API tokens), kept until they expire.
CREATE TABLE revoked_tokens (
  token_id    TEXT        PRIMARY KEY,
  username    TEXT        NOT NULL,
  expire_time TIMESTAMPTZ,                       -- NULL: forever
  revoke_time TIMESTAMPTZ NOT NULL
);

-- Per user: tokens whose "iat" is before not_before are refused (password change, admin flag
-- change, deletion). Kept after the user is deleted, so a re-created user with the same name
-- never inherits the old tokens.
CREATE TABLE token_not_before (
  username   TEXT        PRIMARY KEY,
  not_before TIMESTAMPTZ NOT NULL
);

-- One-time facts about this schema (e.g. that the installation was bootstrapped).
CREATE TABLE service_state (
  key        TEXT        PRIMARY KEY,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
