-- Leases of accounts' event streams to processes (store.Leases): the live
-- members with their expiry, and one row per leased account. Times are
-- INTEGER microseconds since the Unix epoch, UTC, by the store's clock.
CREATE TABLE bd_lease_members (
    member  TEXT    NOT NULL PRIMARY KEY,
    expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE bd_leases (
    account TEXT    NOT NULL PRIMARY KEY,
    holder  TEXT    NOT NULL,
    expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX bd_leases_by_holder ON bd_leases (holder);
