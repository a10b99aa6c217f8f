"""Scheduled jobs: each a few lines that run one stage of :mod:`connector.sync` as of today,
and the service (``connector run``) that schedules them."""
