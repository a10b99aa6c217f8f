"""The connector's HTTP face: the ``/v1`` API (FastAPI, OpenAPI at ``/openapi.json``), health
and metrics for the people who run it, signed webhooks, and the console in the browser.

Routes only read through :mod:`connector.db` or call :mod:`connector.sync`, and report."""
