"""Emulators of the systems the connector talks to, for tests, benchmarks, demos and dry runs.

- :mod:`sandbox.salesforce`: a fake Salesforce org (REST, composite, Bulk API 1.0 and 2.0,
  SOQL, OAuth, limits and faults) over HTTPS.
- :mod:`sandbox.xero`: a fake Xero organisation (Accounting API, OAuth, limits, idempotency).

They ship in the same distribution as the connector but are not part of it: nothing under
``connector/`` imports them except ``connector sandbox serve`` and the demo, both lazily.
"""
