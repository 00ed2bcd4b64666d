-- Quotas and leases of the permission service (owners are "users/{u}" or "teams/{t}").

-- Explicit limits set by admins. A NULL column follows the configured default for the owner's
-- kind. AcquireLease also inserts an all-NULL row (equivalent to no row) so there is always a
-- row to lock: concurrent acquisitions for one owner serialize on it (SELECT ... FOR UPDATE).
CREATE TABLE quotas (
  owner            TEXT        PRIMARY KEY,
  cpu_millis       BIGINT,
  memory_mib       BIGINT,
  gpus             BIGINT,
  experiments      BIGINT,
  notebooks        BIGINT,
  serving_replicas BIGINT,
  update_time      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Reservations held by running workloads. A lease counts while expire_time is in the future;
-- released leases are deleted, lapsed ones are deleted by the leader's housekeeping.
CREATE TABLE leases (
  lease_id         TEXT        PRIMARY KEY,      -- last segment of "leases/{id}"
  owner            TEXT        NOT NULL,
  project          TEXT        NOT NULL,         -- "projects/{p}"
  holder           TEXT        NOT NULL DEFAULT '',
  cpu_millis       BIGINT      NOT NULL DEFAULT 0,
  memory_mib       BIGINT      NOT NULL DEFAULT 0,
  gpus             BIGINT      NOT NULL DEFAULT 0,
  experiments      BIGINT      NOT NULL DEFAULT 0,
  notebooks        BIGINT      NOT NULL DEFAULT 0,
  serving_replicas BIGINT      NOT NULL DEFAULT 0,
  ttl_seconds      INTEGER     NOT NULL,
  create_time      TIMESTAMPTZ NOT NULL,
  expire_time      TIMESTAMPTZ NOT NULL
);
CREATE INDEX leases_by_owner ON leases (owner, expire_time);
CREATE INDEX leases_by_expiry ON leases (expire_time);
