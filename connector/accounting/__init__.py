"""Accounting targets: one interface (:mod:`connector.accounting.base`) and its adapters."""
