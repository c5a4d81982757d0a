-- Contacts' mobile, email and id_number are stored sealed (AES-256-GCM,
-- kehu-store cipher.rs); beside each, a blind index (keyed hash) for exact
-- lookups, and the id of the key that sealed the row. Rows written before
-- stay clear (pii_key NULL) until the server seals them at start.
-- Keep in step with the other backend's 0025.
ALTER TABLE contacts ADD COLUMN mobile_idx TEXT;
ALTER TABLE contacts ADD COLUMN email_idx TEXT;
ALTER TABLE contacts ADD COLUMN id_number_idx TEXT;
ALTER TABLE contacts ADD COLUMN pii_key TEXT;
CREATE INDEX contacts_mobile_idx ON contacts(mobile_idx) WHERE mobile_idx IS NOT NULL;
CREATE INDEX contacts_email_idx ON contacts(email_idx) WHERE email_idx IS NOT NULL;
CREATE INDEX contacts_id_number_idx ON contacts(id_number_idx) WHERE id_number_idx IS NOT NULL;
