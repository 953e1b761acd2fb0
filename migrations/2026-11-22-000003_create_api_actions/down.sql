DROP TABLE api_actions;
