"""Authentication (a client's key as a Bearer token), scopes and the rate limit.

Only the Authorization header counts: a staff member's admin session is no API
credential, so no cookie can make a browser write through the API (nothing to forge).
"""

from ninja.security import HttpBearer

from . import ratelimit, selectors
from .problems import Problem


class ClientKey(HttpBearer):
    """``auth=ClientKey("events:write")``: the request's client, with that scope."""

    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request, token):
        client = selectors.client_for_key(token)
        if client is None:
            return None  # 401
        if self.scope not in client.scopes:
            raise Problem(
                403,
                "missing-scope",
                f"The client {client.name!r} does not have the scope {self.scope!r}"
                f" (it has: {', '.join(client.scopes) or 'none'}).",
            )
        if (wait := ratelimit.seconds_to_wait(client)) is not None:
            raise Problem(
                429,
                "rate-limited",
                f"The client {client.name!r} sent more than {ratelimit.limit_for(client)}"
                f" requests this minute; retry after {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        request.api_client = client
        return client
