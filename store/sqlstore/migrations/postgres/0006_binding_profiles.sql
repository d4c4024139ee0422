-- Version 6 keeps the customer's retailCRM profile (personal manager,
-- segments, tags, when it was read) with the binding, as a JSON document of
-- bd.CustomerProfile; NULL means no profile was read.
ALTER TABLE bd_bindings ADD COLUMN profile text;

-- A changed retailCRM card drops the profiles of the bindings to it
-- (Store.ForgetProfiles): found by the retailCRM customer.
CREATE INDEX bd_bindings_crm_customer ON bd_bindings (account, crm_customer);
