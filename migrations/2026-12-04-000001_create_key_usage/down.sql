DROP TABLE key_usage_addresses;
DROP TABLE key_usage_daily;
DROP TABLE key_usage_hourly;
