-- The job engine. Jobs are River's (its river_* tables, created by River's
-- own migrations right after the store's); this table only remembers which
-- accounts have a job queue, so that a worker of every account knows the
-- queues to work. queue is River's queue of the account (see queueOf).
CREATE TABLE bd_job_queues (
    account TEXT NOT NULL PRIMARY KEY,
    queue   TEXT NOT NULL
) STRICT, WITHOUT ROWID;
