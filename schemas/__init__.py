"""JSON Schemas shipped with emrcomm: the config file, requests, and each built-in plugin's settings."""
