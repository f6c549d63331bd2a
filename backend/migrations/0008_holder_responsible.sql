-- Who is responsible for each contact and company in the caller index
-- (Kommo's `responsible_user_id`; 0 until the index reads it): the PBX's
-- routing question (`GET /pbx/{account_id}/route`) answers with the
-- responsible user of the record caller ID picks, a holder when no single
-- lead or customer is active.
ALTER TABLE phonebook_holders ADD COLUMN responsible_user_id BIGINT NOT NULL DEFAULT 0;
