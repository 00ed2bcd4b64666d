-- Platform credentials ("platform/credentials/{id}"): secrets owned by the platform, not by a
-- user — a compute cluster's kubeconfig, for one. Managed by administrators; their plain secret
-- is released only to the experiment, notebook and serving services. Sealed like users' ones.
CREATE TABLE platform_credentials (
  credential_id TEXT        PRIMARY KEY,
  type          TEXT        NOT NULL,
  description   TEXT        NOT NULL DEFAULT '',
  sealed        BYTEA       NOT NULL,
  create_time   TIMESTAMPTZ NOT NULL,
  update_time   TIMESTAMPTZ NOT NULL
);
