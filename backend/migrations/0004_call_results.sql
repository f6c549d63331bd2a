-- Call results (`crate::sync::results`): why the manager's last result could
-- not be applied (the chosen record cannot take a call, or is gone), shown
-- on the call in the widget until a new result is saved and applied. NULL
-- when there is nothing to tell.
ALTER TABLE calls ADD COLUMN result_error TEXT NULL;
