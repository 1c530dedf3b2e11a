"""Clinic staff who read the chart in a browser (the staff pages under ``emrcomm serve``): their
accounts, created with ``emrcomm staff add``, with passwords hashed by Argon2id, and their
sessions, kept in the database (docs/security.md, "Staff pages")."""
