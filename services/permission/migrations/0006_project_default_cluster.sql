-- The compute cluster a project's experiments, notebooks and services run on when their spec
-- names none: "computeClusters/{id}", or '' for the platform's default (local).
ALTER TABLE projects ADD COLUMN default_compute_cluster TEXT NOT NULL DEFAULT '';
