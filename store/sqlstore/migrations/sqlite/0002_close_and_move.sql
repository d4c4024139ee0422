-- Closed dialogs. A dialog closed stays refused by Assign, Record and
-- Enqueue until PruneEvents forgets it, together with its reply claims.
-- SQLite admits one writer at a time, so a check of this table inside a
-- write transaction cannot be overtaken by a concurrent Close.

CREATE TABLE bd_closed (
    account   TEXT    NOT NULL,
    dialog    INTEGER NOT NULL,
    closed_at INTEGER NOT NULL,
    PRIMARY KEY (account, dialog)
) STRICT, WITHOUT ROWID;

-- PruneEvents.
CREATE INDEX bd_closed_by_closed_at ON bd_closed (closed_at);
