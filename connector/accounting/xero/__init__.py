"""Xero: the first remote accounting target (OAuth 2.0, rate limits, payloads, the target)."""
