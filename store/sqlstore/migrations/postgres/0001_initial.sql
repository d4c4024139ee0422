-- The initial schema. Every table is keyed by account first, so accounts
-- never mix. Tables are created in the first schema of the search_path.

CREATE TABLE bd_accounts (
    id          text  NOT NULL PRIMARY KEY,
    domain      text  NOT NULL,
    api_key     text  NOT NULL,
    mg_endpoint text  NOT NULL,
    mg_token    text  NOT NULL,
    settings    jsonb NOT NULL
);

-- At most one responsible per dialog: the primary key enforces it.
CREATE TABLE bd_responsibles (
    account     text        NOT NULL,
    dialog      bigint      NOT NULL,
    kind        smallint    NOT NULL CHECK (kind IN (1, 2)),
    responsible bigint      NOT NULL,
    customer    bigint      NOT NULL,
    assigned_at timestamptz NOT NULL,
    PRIMARY KEY (account, dialog)
);

-- DialogsOf: a manager's dialogs in id order.
CREATE INDEX bd_responsibles_by_responsible
    ON bd_responsibles (account, kind, responsible, dialog);

-- One row per manager ever assigned; open_dialogs is kept equal to the
-- manager's rows in bd_responsibles by every write that changes them.
CREATE TABLE bd_manager_loads (
    account          text        NOT NULL,
    manager          bigint      NOT NULL,
    open_dialogs     integer     NOT NULL CHECK (open_dialogs >= 0),
    last_assigned_at timestamptz NOT NULL,
    PRIMARY KEY (account, manager)
);

-- LastManager: the manager a customer was last given.
CREATE TABLE bd_last_managers (
    account     text        NOT NULL,
    customer    bigint      NOT NULL,
    manager     bigint      NOT NULL,
    PRIMARY KEY (account, customer)
);

CREATE TABLE bd_queue (
    account             text        NOT NULL,
    dialog              bigint      NOT NULL,
    chat                bigint      NOT NULL,
    channel             bigint      NOT NULL,
    customer            bigint      NOT NULL,
    customer_first_name text        NOT NULL,
    customer_last_name  text        NOT NULL,
    customer_phone      text        NOT NULL,
    customer_email      text        NOT NULL,
    opened_at           timestamptz NOT NULL,
    reason              text        NOT NULL,
    priority            integer     NOT NULL,
    since               timestamptz NOT NULL,
    PRIMARY KEY (account, dialog)
);

-- Waiting: queue order.
CREATE INDEX bd_queue_order ON bd_queue (account, priority DESC, since, dialog);

CREATE TABLE bd_replies (
    account    text        NOT NULL,
    dialog     bigint      NOT NULL,
    situation  text        NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (account, dialog, situation)
);

CREATE TABLE bd_events (
    account    text        NOT NULL,
    event_key  text        NOT NULL,
    claimed_at timestamptz NOT NULL,
    PRIMARY KEY (account, event_key)
);

-- PruneEvents.
CREATE INDEX bd_events_by_claimed_at ON bd_events (claimed_at);

CREATE TABLE bd_bindings (
    account      text        NOT NULL,
    customer     bigint      NOT NULL,
    crm_customer bigint      NOT NULL,
    rule         text        NOT NULL,
    bound_at     timestamptz NOT NULL,
    PRIMARY KEY (account, customer)
);

-- bd_assign is Store.Assign in one round trip. It takes the dialog first
-- (the primary key of bd_responsibles) and the manager's load row second,
-- the same order as every other write, so concurrent writers never
-- deadlock. The capacity check and the increment are one guarded upsert:
-- under READ COMMITTED a concurrent increment is waited for and the guard is
-- evaluated again on the row it committed. A refused assignment removes the
-- dialog row it inserted, so it changes nothing. It returns 'assigned',
-- 'capacity' or 'ok'.
CREATE FUNCTION bd_assign(
    p_account     text,
    p_dialog      bigint,
    p_kind        smallint,
    p_responsible bigint,
    p_customer    bigint,
    p_capacity    integer,
    p_at          timestamptz
) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bd_responsibles (account, dialog, kind, responsible, customer, assigned_at)
    VALUES (p_account, p_dialog, p_kind, p_responsible, p_customer, p_at)
    ON CONFLICT (account, dialog) DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'assigned';
    END IF;
    IF p_kind <> 1 THEN
        RETURN 'ok';
    END IF;

    IF p_capacity >= 1 THEN
        INSERT INTO bd_manager_loads AS l (account, manager, open_dialogs, last_assigned_at)
        VALUES (p_account, p_responsible, 1, p_at)
        ON CONFLICT (account, manager) DO UPDATE
            SET open_dialogs = l.open_dialogs + 1,
                last_assigned_at = excluded.last_assigned_at
            WHERE l.open_dialogs < p_capacity;
    END IF;
    IF p_capacity < 1 OR NOT FOUND THEN
        DELETE FROM bd_responsibles WHERE account = p_account AND dialog = p_dialog;
        RETURN 'capacity';
    END IF;

    IF p_customer <> 0 THEN
        INSERT INTO bd_last_managers AS c (account, customer, manager)
        VALUES (p_account, p_customer, p_responsible)
        ON CONFLICT (account, customer) DO UPDATE
            SET manager = excluded.manager
            WHERE c.manager <> excluded.manager;
    END IF;
    RETURN 'ok';
END
$$;

-- bd_release is Store.Release in one round trip: it deletes the dialog's row
-- (locking it first, as every write does) and then frees the manager's
-- load. The two are separate statements on purpose: under READ COMMITTED
-- the second takes a fresh snapshot, so it sees a load row that a
-- concurrent writer, waited for by the first, has just committed. It
-- returns one row, or none when the dialog had no responsible.
CREATE FUNCTION bd_release(p_account text, p_dialog bigint)
RETURNS TABLE (released_kind smallint, released_responsible bigint)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM bd_responsibles
    WHERE account = p_account AND dialog = p_dialog
    RETURNING kind, responsible INTO released_kind, released_responsible;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF released_kind = 1 THEN
        UPDATE bd_manager_loads
        SET open_dialogs = open_dialogs - 1
        WHERE account = p_account AND manager = released_responsible AND open_dialogs > 0;
    END IF;
    RETURN NEXT;
END
$$;
