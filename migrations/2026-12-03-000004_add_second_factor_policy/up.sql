-- Who in an organization must sign in with a second factor (issue 17, item 4): nobody (the
-- default, so existing organizations sign in as before), administrators, managers (holders of
-- keys.manage or users.manage, and administrators) or everyone. Staff accounts always must;
-- that rule lives in the code, not here.
ALTER TABLE organizations
    ADD COLUMN second_factor_required_for text NOT NULL DEFAULT 'nobody'
        CHECK (second_factor_required_for IN ('nobody', 'administrators', 'managers', 'everyone'));
