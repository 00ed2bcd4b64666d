-- Experiments of the experiment service. The full resource (spec, history, tasks) is kept as a
-- serialized submarine.experiment.v1.Experiment (body); the columns beside it exist to filter,
-- sort, enforce uniqueness and drive the controller.
CREATE TABLE experiments (
  id             BIGSERIAL PRIMARY KEY,        -- internal; keyset tie-breaker
  project        TEXT        NOT NULL,
  experiment_id  TEXT        NOT NULL,         -- last segment of the resource name
  uid            TEXT        NOT NULL UNIQUE,
  owner          TEXT        NOT NULL,         -- users/{u}
  framework      TEXT        NOT NULL,
  state          TEXT        NOT NULL,         -- State enum name
  priority       INTEGER     NOT NULL DEFAULT 0,
  labels         JSONB       NOT NULL DEFAULT '{}',
  body           BYTEA       NOT NULL,
  etag           TEXT        NOT NULL,
  create_time    TIMESTAMPTZ NOT NULL,
  update_time    TIMESTAMPTZ NOT NULL,
  -- Controller state: a stop asked for (and by whom), the quota lease held, the workload run.
  stop_reason    TEXT,
  lease          TEXT,
  workload_id    TEXT UNIQUE,
  UNIQUE (project, experiment_id)
);
CREATE INDEX experiments_by_create_time ON experiments (project, create_time, id);
CREATE INDEX experiments_unfinished ON experiments (priority DESC, create_time, id)
  WHERE state IN ('PENDING', 'ACCEPTED', 'CREATED', 'RUNNING');
CREATE INDEX experiments_labels ON experiments USING GIN (labels);

-- Counter behind generated ids experiment-<millis>-<nnnn> (Apache Submarine's shape).
CREATE SEQUENCE experiment_id_seq;
