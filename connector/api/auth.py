"""Who is calling: an API key in ``Authorization: Bearer …``, checked against its scope.

401 without a key or with one that is unknown or revoked, 403 with a read key where a write
key is needed. The key is compared by its hash and never logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from connector.api.instance import Instance
from connector.api.keys import KeyInfo, Scope, authenticate, note_use
from connector.api.problems import ApiProblem
from connector.db.engine import reading, transaction

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key from `connector apikey create`, as `Authorization: Bearer ck_…`.",
)


def instance_of(request: Request) -> Instance:
    instance = request.app.state.instance
    assert isinstance(instance, Instance)
    return instance


def key_of(instance: Instance, token: str | None) -> KeyInfo:
    """The key ``token`` is; a 401 problem when there is none or it is not ours."""
    challenge = {"WWW-Authenticate": 'Bearer realm="connector"'}
    if not token:
        raise ApiProblem(401, "give an API key as `Authorization: Bearer <key>`", headers=challenge)
    with reading(instance.factory) as session:
        info = authenticate(session, token)
    if info is None:
        raise ApiProblem(
            401,
            "the API key is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="connector", error="invalid_token"'},
        )
    with transaction(instance.factory) as session:
        note_use(session, info)
    return info


def requires(scope: Scope) -> Callable[..., KeyInfo]:
    """A dependency: the calling key, which must allow ``scope``."""

    def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> KeyInfo:
        info = key_of(instance_of(request), credentials.credentials if credentials else None)
        if not info.allows(scope):
            raise ApiProblem(
                403,
                f"the key {info.prefix}… has the {info.scope} scope; this needs a {scope} key",
                slug="scope",
            )
        request.state.api_key = info
        return info

    return dependency


ReadKey = Annotated[KeyInfo, Depends(requires("read"))]
WriteKey = Annotated[KeyInfo, Depends(requires("write"))]
