-- Version 6 keeps the customer's retailCRM profile (personal manager,
-- segments, tags, when it was read) with the binding, as a JSON document of
-- bd.CustomerProfile; NULL means no profile was read.
ALTER TABLE bd_bindings ADD COLUMN profile TEXT;
