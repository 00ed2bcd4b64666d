-- Compute clusters (platform-level "computeClusters/{cluster}"). The full resource is kept as a
-- serialized submarine.environment.v1.ComputeCluster (body); the columns beside it exist to
-- filter, sort and enforce uniqueness. The built-in "local" cluster is inserted by the service at
-- its first start (ComputeClusterManager::SeedLocal).
CREATE TABLE compute_clusters (
  id           BIGSERIAL PRIMARY KEY,        -- internal; keyset tie-breaker
  cluster_id   TEXT        NOT NULL UNIQUE,  -- last segment of the resource name
  kind         TEXT        NOT NULL,
  display_name TEXT        NOT NULL DEFAULT '',
  labels       JSONB       NOT NULL DEFAULT '{}',
  body         BYTEA       NOT NULL,
  etag         TEXT        NOT NULL,
  create_time  TIMESTAMPTZ NOT NULL,
  update_time  TIMESTAMPTZ NOT NULL
);
CREATE INDEX compute_clusters_by_create_time ON compute_clusters (create_time, id);
