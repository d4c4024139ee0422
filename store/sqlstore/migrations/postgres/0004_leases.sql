-- Leases of accounts' event streams to processes (store.Leases): the live
-- members with their expiry, and one row per leased account. Expiry is
-- the database's clock: every round reads now() once and compares with it.
CREATE TABLE bd_lease_members (
    member  text        NOT NULL PRIMARY KEY,
    expires timestamptz NOT NULL
);

CREATE TABLE bd_leases (
    account text        NOT NULL PRIMARY KEY,
    holder  text        NOT NULL,
    expires timestamptz NOT NULL
);

CREATE INDEX bd_leases_by_holder ON bd_leases (holder);
