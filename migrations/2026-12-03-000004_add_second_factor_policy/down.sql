ALTER TABLE organizations DROP COLUMN second_factor_required_for;
