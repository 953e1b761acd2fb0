DROP INDEX audit_events_login_failures_by_account_idx;
DROP INDEX audit_events_login_failures_by_ip_idx;
CREATE INDEX audit_events_login_failures_by_account_idx ON audit_events (target_label, occurred_at)
    WHERE action = 'login.failure';
CREATE INDEX audit_events_login_failures_by_ip_idx ON audit_events (client_ip, occurred_at)
    WHERE action = 'login.failure';
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
