-- The initial schema. Times are INTEGER microseconds since the Unix epoch,
-- UTC. Every table is keyed by account first, so accounts never mix.

CREATE TABLE bd_accounts (
    id          TEXT NOT NULL PRIMARY KEY,
    domain      TEXT NOT NULL,
    api_key     TEXT NOT NULL,
    mg_endpoint TEXT NOT NULL,
    mg_token    TEXT NOT NULL,
    settings    TEXT NOT NULL
) STRICT;

-- At most one responsible per dialog: the primary key enforces it.
CREATE TABLE bd_responsibles (
    account     TEXT    NOT NULL,
    dialog      INTEGER NOT NULL,
    kind        INTEGER NOT NULL CHECK (kind IN (1, 2)),
    responsible INTEGER NOT NULL,
    customer    INTEGER NOT NULL,
    assigned_at INTEGER NOT NULL,
    PRIMARY KEY (account, dialog)
) STRICT, WITHOUT ROWID;

-- DialogsOf: a manager's dialogs in id order.
CREATE INDEX bd_responsibles_by_responsible
    ON bd_responsibles (account, kind, responsible, dialog);

-- One row per manager ever assigned; open_dialogs is kept equal to the
-- manager's rows in bd_responsibles by every write that changes them.
CREATE TABLE bd_manager_loads (
    account          TEXT    NOT NULL,
    manager          INTEGER NOT NULL,
    open_dialogs     INTEGER NOT NULL CHECK (open_dialogs >= 0),
    last_assigned_at INTEGER NOT NULL,
    PRIMARY KEY (account, manager)
) STRICT, WITHOUT ROWID;

-- LastManager: the manager a customer was last given.
CREATE TABLE bd_last_managers (
    account     TEXT    NOT NULL,
    customer    INTEGER NOT NULL,
    manager     INTEGER NOT NULL,
    PRIMARY KEY (account, customer)
) STRICT, WITHOUT ROWID;

CREATE TABLE bd_queue (
    account             TEXT    NOT NULL,
    dialog              INTEGER NOT NULL,
    chat                INTEGER NOT NULL,
    channel             INTEGER NOT NULL,
    customer            INTEGER NOT NULL,
    customer_first_name TEXT    NOT NULL,
    customer_last_name  TEXT    NOT NULL,
    customer_phone      TEXT    NOT NULL,
    customer_email      TEXT    NOT NULL,
    opened_at           INTEGER NOT NULL,
    reason              TEXT    NOT NULL,
    priority            INTEGER NOT NULL,
    since               INTEGER NOT NULL,
    PRIMARY KEY (account, dialog)
) STRICT, WITHOUT ROWID;

-- Waiting: queue order.
CREATE INDEX bd_queue_order ON bd_queue (account, priority DESC, since, dialog);

CREATE TABLE bd_replies (
    account    TEXT    NOT NULL,
    dialog     INTEGER NOT NULL,
    situation  TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (account, dialog, situation)
) STRICT, WITHOUT ROWID;

CREATE TABLE bd_events (
    account    TEXT    NOT NULL,
    event_key  TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (account, event_key)
) STRICT, WITHOUT ROWID;

-- PruneEvents.
CREATE INDEX bd_events_by_claimed_at ON bd_events (claimed_at);

CREATE TABLE bd_bindings (
    account      TEXT    NOT NULL,
    customer     INTEGER NOT NULL,
    crm_customer INTEGER NOT NULL,
    rule         TEXT    NOT NULL,
    bound_at     INTEGER NOT NULL,
    PRIMARY KEY (account, customer)
) STRICT, WITHOUT ROWID;
