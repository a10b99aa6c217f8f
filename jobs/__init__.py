"""Scheduled jobs: each a few lines that call :mod:`connector.sync` and report."""
