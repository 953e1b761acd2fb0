-- Forgotten passwords of support staff (issue 19, item 6): a set-password link belongs to a
-- web user or to a staff account, never both. Its purpose tells an administrator's link
-- (`set`: an invitation or reset, which replaces every earlier link) from one asked for on the
-- sign-in page (`reset`: which replaces only earlier such links, so that anyone typing an
-- address there cannot cancel a pending invitation).
ALTER TABLE password_links
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN purpose text NOT NULL DEFAULT 'set' CHECK (purpose IN ('set', 'reset')),
    ADD COLUMN staff_id bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    ADD CONSTRAINT password_links_one_account CHECK ((user_id IS NULL) <> (staff_id IS NULL));
CREATE INDEX password_links_staff_id_idx ON password_links (staff_id);
