-- A token may be scoped to one project ("projects/{p}"): a workload's identity token, or a CI
-- token with least privilege. '' = the user's full rights.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT '';
