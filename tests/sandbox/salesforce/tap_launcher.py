"""Run Singer's tap-salesforce against a local org (run by the tap's own interpreter).

tap-salesforce logs in only at ``https://login.salesforce.com`` (or ``test.salesforce.com``
with ``is_sandbox``); this launcher sends that one request to the token URL given as its first
argument instead. Everything after the login is the tap's own: it follows the
``instance_url`` the token answer names. The remaining arguments are the tap's.

    python tap_launcher.py https://127.0.0.1:8443/services/oauth2/token --config c.json --discover
"""

import sys
from typing import Any

import tap_salesforce
from tap_salesforce.salesforce import Salesforce

LOGIN_URLS = (
    "https://login.salesforce.com/services/oauth2/token",
    "https://test.salesforce.com/services/oauth2/token",
)


def main() -> None:
    token_url = sys.argv.pop(1)
    make_request = Salesforce._make_request

    def to_local_org(
        self: Salesforce, http_method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        return make_request(
            self, http_method, token_url if url in LOGIN_URLS else url, *args, **kwargs
        )

    Salesforce._make_request = to_local_org
    tap_salesforce.main()


if __name__ == "__main__":
    main()
