"""A local fake of the Xero Accounting API over HTTPS, for tests, benchmarks and dry runs.

Start it with :class:`sandbox.xero.server.XeroSandbox` (or ``connector sandbox serve
--xero``). It speaks OAuth 2.0 (client credentials, authorization code, rotating refresh
tokens), checks every write body against the strict JSON Schemas in ``schemas/``, keeps an
in-memory organisation (contacts, invoices, credit notes, allocations, payments, manual
journals, its tax rates) under Xero's business rules (each line's tax computed from its TaxType
as Xero computes it), and enforces Xero's rate limits and idempotency keys.
"""
