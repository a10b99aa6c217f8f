"""The billing core: pure domain logic with no I/O and no clock.

Everything here takes its as-of date as a parameter and works on plain values, so it can be
tested exhaustively and reused by every adapter. Storage, the CRM and accounting wrap it.
"""
