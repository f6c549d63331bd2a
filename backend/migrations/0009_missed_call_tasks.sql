-- The follow-up task a missed inbound call gets when the account wants one
-- (`LogSettings::missed_call_task`): its Kommo id once created, so it is
-- created once per call.
ALTER TABLE calls ADD COLUMN missed_task_id BIGINT NULL;
