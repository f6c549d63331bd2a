-- The company each contact in the caller index belongs to (Kommo's
-- `_embedded.companies` of the contact; a contact has one at most), so a
-- ringing call names the contact's company too. NULL: none, or not read yet.
-- Only the id: the name is read from the company's own row, so a renamed
-- company is named anew, and a deleted one (tombstone) is named nowhere. The
-- column is written with the rest of the contact's row, under the same
-- newer-or-equal `updated_at` rule (0005).
ALTER TABLE phonebook_holders ADD COLUMN company_id BIGINT NULL;
-- Indexes built before this column know no company: the next
-- reconciliation reads every record once (from Kommo time 0) instead of the
-- changes only, which fills it in.
UPDATE phonebook_sync SET reconciled_from = 0;
