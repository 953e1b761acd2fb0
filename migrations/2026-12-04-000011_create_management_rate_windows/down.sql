DROP TABLE management_rate_windows;
