-- Closed dialogs, and moving a dialog from one responsible to another.
--
-- A closed dialog is a row of bd_closed, kept until PruneEvents forgets it
-- together with its reply claims. A row cannot be locked before it exists,
-- so the writes that must not overtake a Close of the same dialog (Assign,
-- Record, Enqueue and Close itself) first take a transaction-scoped
-- advisory lock on the dialog, keyed by hashtextextended(account, dialog),
-- and read bd_closed only after holding it. The dialog lock comes first in
-- every such write, before the dialog's rows, the managers' load rows in
-- ascending id order and the customer's row, the order every write keeps.
-- Each function below runs its statements with a fresh snapshot each
-- (READ COMMITTED, volatile functions), so what a writer committed while
-- the lock was waited for is seen.

CREATE TABLE bd_closed (
    account   text        NOT NULL,
    dialog    bigint      NOT NULL,
    closed_at timestamptz NOT NULL,
    PRIMARY KEY (account, dialog)
);

-- PruneEvents.
CREATE INDEX bd_closed_by_closed_at ON bd_closed (closed_at);

-- bd_lock_dialog takes the dialog lock for the rest of the transaction and
-- reports whether the dialog is closed.
CREATE FUNCTION bd_lock_dialog(p_account text, p_dialog bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_account, p_dialog));
    RETURN EXISTS (SELECT 1 FROM bd_closed WHERE account = p_account AND dialog = p_dialog);
END
$$;

-- The version 1 bd_assign gives way to one that knows closed dialogs and
-- moves; a program that still calls the old one fails loudly rather than
-- assign a closed dialog.
DROP FUNCTION bd_assign(text, bigint, smallint, bigint, bigint, integer, timestamptz);

-- bd_assign is Store.Assign in one round trip. p_from_kind 0 asks for a new
-- assignment: the dialog row is inserted (its primary key refuses a second
-- responsible) and, for a manager, the load taken by one guarded upsert that
-- is evaluated again on the newest committed row after waiting for a
-- concurrent writer. A refused assignment removes the row it inserted.
-- Otherwise it is a move from (p_from_kind, p_from): the dialog row is
-- locked and compared, then the loads of the two managers change in
-- ascending id order; a refused move puts back what it changed. It returns
-- 'closed', 'assigned', 'capacity' or 'ok'.
CREATE FUNCTION bd_assign(
    p_account     text,
    p_dialog      bigint,
    p_kind        smallint,
    p_responsible bigint,
    p_customer    bigint,
    p_capacity    integer,
    p_at          timestamptz,
    p_from_kind   smallint,
    p_from        bigint
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_kind   smallint;
    v_id     bigint;
    v_to     bigint;
    v_from   bigint;
    v_freed  boolean := false;
BEGIN
    IF bd_lock_dialog(p_account, p_dialog) THEN
        RETURN 'closed';
    END IF;
    v_to := CASE WHEN p_kind = 1 THEN p_responsible END;

    IF p_from_kind = 0 THEN
        INSERT INTO bd_responsibles (account, dialog, kind, responsible, customer, assigned_at)
        VALUES (p_account, p_dialog, p_kind, p_responsible, p_customer, p_at)
        ON CONFLICT (account, dialog) DO NOTHING;
        IF NOT FOUND THEN
            RETURN 'assigned';
        END IF;
        IF v_to IS NULL THEN
            RETURN 'ok';
        END IF;
        IF p_capacity >= 1 THEN
            INSERT INTO bd_manager_loads AS l (account, manager, open_dialogs, last_assigned_at)
            VALUES (p_account, v_to, 1, p_at)
            ON CONFLICT (account, manager) DO UPDATE
                SET open_dialogs = l.open_dialogs + 1,
                    last_assigned_at = excluded.last_assigned_at
                WHERE l.open_dialogs < p_capacity;
        END IF;
        IF p_capacity < 1 OR NOT FOUND THEN
            DELETE FROM bd_responsibles WHERE account = p_account AND dialog = p_dialog;
            RETURN 'capacity';
        END IF;
    ELSE
        SELECT kind, responsible INTO v_kind, v_id
        FROM bd_responsibles
        WHERE account = p_account AND dialog = p_dialog
        FOR UPDATE;
        IF NOT FOUND OR v_kind <> p_from_kind OR v_id <> p_from
           OR (p_kind = p_from_kind AND p_responsible = p_from) THEN
            RETURN 'assigned';
        END IF;
        IF v_to IS NOT NULL AND p_capacity < 1 THEN
            RETURN 'capacity';
        END IF;
        v_from := CASE WHEN p_from_kind = 1 THEN p_from END;

        IF v_from IS NOT NULL AND (v_to IS NULL OR v_from < v_to) THEN
            UPDATE bd_manager_loads SET open_dialogs = open_dialogs - 1
            WHERE account = p_account AND manager = v_from AND open_dialogs > 0;
            v_freed := FOUND;
        END IF;
        IF v_to IS NOT NULL THEN
            INSERT INTO bd_manager_loads AS l (account, manager, open_dialogs, last_assigned_at)
            VALUES (p_account, v_to, 1, p_at)
            ON CONFLICT (account, manager) DO UPDATE
                SET open_dialogs = l.open_dialogs + 1,
                    last_assigned_at = excluded.last_assigned_at
                WHERE l.open_dialogs < p_capacity;
            IF NOT FOUND THEN
                IF v_freed THEN
                    UPDATE bd_manager_loads SET open_dialogs = open_dialogs + 1
                    WHERE account = p_account AND manager = v_from;
                END IF;
                RETURN 'capacity';
            END IF;
        END IF;
        IF v_from IS NOT NULL AND NOT (v_to IS NULL OR v_from < v_to) THEN
            UPDATE bd_manager_loads SET open_dialogs = open_dialogs - 1
            WHERE account = p_account AND manager = v_from AND open_dialogs > 0;
        END IF;

        UPDATE bd_responsibles
        SET kind = p_kind, responsible = p_responsible,
            customer = CASE WHEN p_customer <> 0 THEN p_customer ELSE customer END,
            assigned_at = p_at
        WHERE account = p_account AND dialog = p_dialog;
        IF v_to IS NULL THEN
            RETURN 'ok';
        END IF;
    END IF;

    IF p_customer <> 0 THEN
        INSERT INTO bd_last_managers AS c (account, customer, manager)
        VALUES (p_account, p_customer, v_to)
        ON CONFLICT (account, customer) DO UPDATE
            SET manager = excluded.manager
            WHERE c.manager <> excluded.manager;
    END IF;
    RETURN 'ok';
END
$$;

-- bd_close is Store.Close in one round trip: under the dialog lock it marks
-- the dialog closed (keeping the first close time), removes its responsible
-- and frees their load, and takes it out of the queue. It returns the
-- responsible it removed, or no row.
CREATE FUNCTION bd_close(p_account text, p_dialog bigint, p_at timestamptz)
RETURNS TABLE (closed_kind smallint, closed_responsible bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM bd_lock_dialog(p_account, p_dialog);
    INSERT INTO bd_closed (account, dialog, closed_at)
    VALUES (p_account, p_dialog, p_at)
    ON CONFLICT (account, dialog) DO NOTHING;

    DELETE FROM bd_responsibles
    WHERE account = p_account AND dialog = p_dialog
    RETURNING kind, responsible INTO closed_kind, closed_responsible;
    IF FOUND AND closed_kind = 1 THEN
        UPDATE bd_manager_loads
        SET open_dialogs = open_dialogs - 1
        WHERE account = p_account AND manager = closed_responsible AND open_dialogs > 0;
    END IF;

    DELETE FROM bd_queue WHERE account = p_account AND dialog = p_dialog;
    IF closed_kind IS NOT NULL THEN
        RETURN NEXT;
    END IF;
END
$$;

-- bd_enqueue is Store.Enqueue in one round trip: under the dialog lock it
-- refuses a closed dialog, then adds the entry unless the dialog waits
-- already. It returns 'closed', 'waiting' or 'added'.
CREATE FUNCTION bd_enqueue(
    p_account             text,
    p_dialog              bigint,
    p_chat                bigint,
    p_channel             bigint,
    p_customer            bigint,
    p_customer_first_name text,
    p_customer_last_name  text,
    p_customer_phone      text,
    p_customer_email      text,
    p_opened_at           timestamptz,
    p_reason              text,
    p_priority            integer,
    p_since               timestamptz
) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF bd_lock_dialog(p_account, p_dialog) THEN
        RETURN 'closed';
    END IF;
    INSERT INTO bd_queue (account, dialog, chat, channel, customer,
        customer_first_name, customer_last_name, customer_phone, customer_email,
        opened_at, reason, priority, since)
    VALUES (p_account, p_dialog, p_chat, p_channel, p_customer,
        p_customer_first_name, p_customer_last_name, p_customer_phone, p_customer_email,
        p_opened_at, p_reason, p_priority, p_since)
    ON CONFLICT (account, dialog) DO NOTHING;
    IF FOUND THEN
        RETURN 'added';
    END IF;
    RETURN 'waiting';
END
$$;
