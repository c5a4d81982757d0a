-- Each role's rights over personal fields ({"contact.mobile": "masked", …}).
-- Keep in step with the other backend's 0023.
ALTER TABLE roles ADD COLUMN field_rights JSONB NOT NULL DEFAULT '{}';
