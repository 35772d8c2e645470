-- pgbench script: what POST /v1/orgs/{org}/tasks writes, in one transaction:
-- the task with its org counter (tasks' SQL_INSERT_TASK) and the outbox row
-- (platform's outbox insert), with an envelope of the same size. Variables
-- :org and :user are set by bench/tasks (-D); run with -M prepared, as the
-- server prepares its statements.
BEGIN;
WITH counter AS (
  INSERT INTO tasks.org_counters AS c (org_id, tasks) VALUES (:org::uuid, 1)
  ON CONFLICT (org_id) DO UPDATE SET tasks = c.tasks + 1 RETURNING c.tasks
), t AS (
  INSERT INTO tasks.tasks (id, org_id, project_id, title, description, priority, assignee_id, due_at, created_by)
  VALUES (gen_random_uuid(), :org::uuid, NULL, 'Benchmark task', 'Created by bench/tasks', 'high', NULL, NULL, :user::uuid)
  RETURNING *
) SELECT id, org_id, project_id, title, description, status, priority, assignee_id,
         tasks.rfc3339(due_at), created_by, tasks.rfc3339(created_at), tasks.rfc3339(updated_at),
         version, tasks.rfc3339(completed_at), completed_by, counter.tasks FROM t, counter;
INSERT INTO platform.outbox (id, type, aggregate_id, occurred_at, payload)
VALUES (gen_random_uuid(), 'task.created', gen_random_uuid()::text, now(),
        jsonb_build_object('id', gen_random_uuid(), 'type', 'task.created', 'org_id', :org::text,
          'actor_id', :user::text, 'occurred_at', now(),
          'data', jsonb_build_object('task_id', gen_random_uuid(), 'org_id', :org::text,
            'title', 'Benchmark task', 'created_by', :user::text, 'assignee_id', NULL,
            'project_id', NULL, 'status', 'todo', 'priority', 'high', 'version', 1),
          'trace', jsonb_build_object('trace_id', md5(random()::text), 'request_id', md5(random()::text))));
COMMIT;
