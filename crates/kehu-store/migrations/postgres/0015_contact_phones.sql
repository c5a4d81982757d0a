-- Contacts looked up by phone: the duplicate checks of imports, of the
-- new-customer form and of web-form leads. Keep in step with the other backend's 0015.
CREATE INDEX contacts_mobile ON contacts(mobile);
CREATE INDEX contacts_landline ON contacts(landline);
