-- The tasks module's schema: projects, tasks, comments, and the per-org
-- counter that serialises plan-limit checks. Runs as bh_tasks, which owns
-- schema `tasks`; nothing here may reference another module's schema (users
-- and orgs are plain uuids, checked through auth's public API).

-- Times leave the database as RFC 3339 UTC text ("2026-01-01T12:00:00Z",
-- with the fraction only when there is one), whatever the session TimeZone.
CREATE FUNCTION tasks.rfc3339(ts timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM ts AT TIME ZONE 'UTC')::bigint % 1000000 = 0 THEN ''
                ELSE '.' || rtrim(to_char(ts AT TIME ZONE 'UTC', 'US'), '0') END
        || 'Z'
$$;

CREATE TABLE tasks.projects (
    id         uuid PRIMARY KEY,
    org_id     uuid NOT NULL,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT projects_org_name_key UNIQUE (org_id, name),
    -- Target of tasks' composite foreign key: a task may only point at a
    -- project of its own organization, enforced by Postgres itself.
    CONSTRAINT projects_id_org_key UNIQUE (id, org_id)
);
CREATE INDEX projects_org_created_idx ON tasks.projects (org_id, created_at DESC, id DESC);

CREATE TABLE tasks.tasks (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL,
    project_id   uuid,
    title        text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description  text NOT NULL DEFAULT '' CHECK (char_length(description) <= 10000),
    status       text NOT NULL DEFAULT 'todo'
                 CHECK (status IN ('todo', 'in_progress', 'done')),
    priority     text NOT NULL DEFAULT 'normal'
                 CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    assignee_id  uuid,
    due_at       timestamptz,
    created_by   uuid NOT NULL,
    completed_at timestamptz,
    completed_by uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    version      bigint NOT NULL DEFAULT 1,
    CONSTRAINT tasks_project_fkey FOREIGN KEY (project_id, org_id)
        REFERENCES tasks.projects (id, org_id)
);

-- One index per way a list page is driven, each ending in the cursor's
-- (created_at, id) so a page is one index range scan (docs/tasks.md).
CREATE INDEX tasks_org_created_idx ON tasks.tasks (org_id, created_at DESC, id DESC);
CREATE INDEX tasks_org_assignee_created_idx
    ON tasks.tasks (org_id, assignee_id, created_at DESC, id DESC) WHERE assignee_id IS NOT NULL;
CREATE INDEX tasks_org_project_created_idx
    ON tasks.tasks (org_id, project_id, created_at DESC, id DESC) WHERE project_id IS NOT NULL;
CREATE INDEX tasks_org_status_created_idx
    ON tasks.tasks (org_id, status, created_at DESC, id DESC);

CREATE TABLE tasks.comments (
    id         uuid PRIMARY KEY,
    task_id    uuid NOT NULL REFERENCES tasks.tasks (id) ON DELETE CASCADE,
    org_id     uuid NOT NULL,
    author_id  uuid NOT NULL,
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX comments_task_created_idx ON tasks.comments (task_id, created_at, id);

-- How many tasks each organization has. Creating a task updates its row
-- first, which locks it: concurrent creates in one org queue up here, so the
-- plan-limit check always sees the count the previous create committed.
CREATE TABLE tasks.org_counters (
    org_id uuid PRIMARY KEY,
    tasks  bigint NOT NULL DEFAULT 0 CHECK (tasks >= 0)
);
