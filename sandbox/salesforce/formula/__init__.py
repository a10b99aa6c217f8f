"""Salesforce formula fields in the sandbox: parsed with a grammar (parser.py) and translated
to SQLite SQL (sql.py), so that the org computes them when a record is read, as Salesforce
does, and a query can select, filter and sort on them."""
