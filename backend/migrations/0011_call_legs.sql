-- Ring groups and transfers: the extensions a call rang and was answered at
-- (`callcard_calls::call::Leg`, as JSON), from which its holder (the
-- `extension` and `kommo_user_id` columns) is derived. NULL: one extension,
-- or a row from before.
ALTER TABLE calls ADD COLUMN legs TEXT NULL;
