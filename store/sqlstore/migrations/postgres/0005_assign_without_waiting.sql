DROP FUNCTION bd_assign(text, bigint, smallint, bigint, bigint, integer, timestamptz, smallint, bigint);

-- bd_assign is Store.Assign in one round trip, as in version 2, with one
-- parameter more. With p_wait false, a new assignment to a manager whose
-- load row another transaction holds locked (an assignment to them in
-- flight) returns 'busy' at once instead of waiting for that transaction to
-- end: concurrent distributions then go to other managers rather than queue
-- up behind one row. A move locks two load rows in id order and always
-- waits, so that it cannot deadlock. p_wait defaults to true, so a process of version 2 to 4
-- calling with nine arguments gets the waiting behaviour it expects. It
-- returns 'closed', 'assigned', 'capacity', 'busy' or 'ok'.
CREATE FUNCTION bd_assign(
    p_account     text,
    p_dialog      bigint,
    p_kind        smallint,
    p_responsible bigint,
    p_customer    bigint,
    p_capacity    integer,
    p_at          timestamptz,
    p_from_kind   smallint,
    p_from        bigint,
    p_wait        boolean DEFAULT true
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
        -- Without waiting: lock the manager's load row now if nobody holds
        -- it. A row that exists but is skipped is locked by another
        -- transaction. The load row is taken after the dialog's row, as by
        -- every write: a Release of this dialog that deleted its row and
        -- waits for the load cannot deadlock with this.
        IF NOT p_wait AND p_capacity >= 1 THEN
            PERFORM 1 FROM bd_manager_loads
            WHERE account = p_account AND manager = v_to
            FOR UPDATE SKIP LOCKED;
            IF NOT FOUND AND EXISTS (SELECT 1 FROM bd_manager_loads
                                     WHERE account = p_account AND manager = v_to) THEN
                DELETE FROM bd_responsibles WHERE account = p_account AND dialog = p_dialog;
                RETURN 'busy';
            END IF;
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
