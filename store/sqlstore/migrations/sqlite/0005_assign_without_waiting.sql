-- Version 5 changes PostgreSQL's bd_assign only: SQLite has one writer at a
-- time, so an assignment there never waits for another one's row locks.
SELECT 1;
