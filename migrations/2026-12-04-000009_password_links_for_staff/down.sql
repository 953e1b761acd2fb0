DELETE FROM password_links WHERE staff_id IS NOT NULL;
ALTER TABLE password_links DROP CONSTRAINT password_links_one_account;
ALTER TABLE password_links DROP COLUMN staff_id;
ALTER TABLE password_links DROP COLUMN purpose;
ALTER TABLE password_links ALTER COLUMN user_id SET NOT NULL;
