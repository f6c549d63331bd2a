-- Click-to-call: where the account's PBX takes originate requests
-- (`callcard_calls::originate::Originate`, signed with the webhook secret).
-- NULL: click-to-call is not set up for the account.
ALTER TABLE accounts ADD COLUMN pbx_originate_url TEXT NULL;
