"""What both conformance clients need, whatever they are built on: arguments and OAuth 2.1.

Imported by ``bridge_client.py`` and ``raw_probe_client.py``, which the suite runs as scripts
(their folder is then first on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://localhost:3000/callback"
# The suite serves a client-metadata document for this URL in the CIMD scenarios.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
_PLACEHOLDER: dict[str, Any] = {"string": "x", "number": 1, "integer": 1, "boolean": True, "array": [], "object": {}}


def arguments_for(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments for every property: its default, else its first enum value, else a placeholder."""
    args: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, Mapping):
            continue
        if "default" in prop:
            args[name] = prop["default"]
        elif prop.get("enum"):
            args[name] = prop["enum"][0]
        else:
            kind = prop.get("type")
            if isinstance(kind, list):
                kind = next((k for k in kind if k != "null"), "string")
            args[name] = _PLACEHOLDER.get(kind or "string", "x")
    return args


class MemoryTokens(TokenStorage):
    """Tokens and the registered client, for one run only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessBrowser:
    """Plays the user agent: GETs the authorization URL and reads the code from the redirect.

    The mock authorization server approves at once, so no login page is involved.
    """

    def __init__(self) -> None:
        self._result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(timeout=30.0) as http:
            response = await http.get(authorization_url, follow_redirects=False)
        location = response.headers.get("location")
        if location is None:
            raise RuntimeError(f"authorization endpoint answered {response.status_code} without a redirect")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if "code" not in query:
            raise RuntimeError(f"no authorization code in the redirect to {location}")
        self._result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        if self._result is None:
            raise RuntimeError("OAuth callback before the redirect")
        result, self._result = self._result, None
        return result


async def oauth_provider(url: str, context: Mapping[str, Any], client_name: str) -> OAuthClientProvider:
    """The SDK's OAuth 2.1 client (authorization code + PKCE; pre-registered, dynamic or CIMD)."""
    storage = MemoryTokens()
    if context.get("client_id"):
        secret = context.get("client_secret")
        await storage.set_client_info(OAuthClientInformationFull(
            client_id=context["client_id"], client_secret=secret, redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            token_endpoint_auth_method="client_secret_basic" if secret else "none"))
    browser = HeadlessBrowser()
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(client_name=client_name,
                                            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"]),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
        client_metadata_url=CLIENT_METADATA_URL,
    )
