"""The OpenAPI document: valid (openapi-spec-validator), every ``/v1`` operation behind the
bearer key, every error a problem in ``application/problem+json``, every write taking an
Idempotency-Key but ``POST /v1/usage-events`` (its events' transaction ids make it safe to send
again). (Every answer the API tests receive is checked against it: conftest.)"""

from __future__ import annotations

from openapi_spec_validator import validate

from tests.api.conftest import Served


def test_the_document_is_valid_and_documents_keys_problems_and_idempotency(
    served: Served,
) -> None:
    document = served.http.get(served.url + "/openapi.json", timeout=30).json()  # not in itself
    validate(document)

    assert document["components"]["securitySchemes"] == {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `connector apikey create`, as "
            "`Authorization: Bearer ck_…`.",
        }
    }
    operations = [
        (path, method, operation)
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
    ]
    assert len(operations) == 22
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    writes = []
    for path, method, operation in operations:
        assert operation["security"] == [{"apiKey": []}], path
        assert operation["responses"]["default"]["content"] == problem, path
        if method == "post":
            writes.append(path)
            if path == "/v1/usage-events":
                assert [p for p in operation.get("parameters", []) if p["in"] == "header"] == []
                continue
            [header] = [p for p in operation["parameters"] if p["in"] == "header"]
            assert (header["name"], header["required"]) == ("Idempotency-Key", True)
    assert writes == [
        "/v1/invoices/{number}/credit-notes",
        "/v1/payments",
        "/v1/waiting/{record_id}/approve",
        "/v1/jobs/{stage}/run",
        "/v1/usage-events",
    ]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    page = document["components"]["schemas"]["Page_Document_"]
    assert sorted(page["required"]) == ["data", "next_cursor"]
