DROP VIEW account_notes;
