"""OpenAPI links: which field of an answer names the resource another operation acts on.

A client (or schemathesis's stateful tests) follows them: the account a connect returned is the one read,
tested, given a portfolio, traded on and removed; the order a placement returned is the one read, modified
and cancelled; a new token is the one revoked. The document is written once from the routes; the links are
added to it here, by operation (method and path), so a renamed route fails loudly instead of losing its
links.
"""

from __future__ import annotations

from typing import Any

ACCOUNT = "/accounts/{account_id}"
ORDER = f"{ACCOUNT}/orders/{{order_id}}"
NEW_ACCOUNT = {"account_id": "$response.body#/id"}
SAME_ACCOUNT = {"account_id": "$request.path.account_id"}
NEW_ORDER = {**SAME_ACCOUNT, "order_id": "$response.body#/order_id"}

Target = tuple[str, str, str, dict[str, str]]
"""(link name, method, path under the API prefix, parameter -> runtime expression)"""


def _on_account(parameters: dict[str, str]) -> list[Target]:
    return [
        ("GetAccount", "get", ACCOUNT, parameters),
        ("TestAccount", "post", f"{ACCOUNT}/test", parameters),
        ("GetPortfolio", "get", f"{ACCOUNT}/portfolio", parameters),
        ("PutPortfolio", "put", f"{ACCOUNT}/portfolio", parameters),
        ("ListOrders", "get", f"{ACCOUNT}/orders", parameters),
        ("PlaceOrder", "post", f"{ACCOUNT}/orders", parameters),
        ("ListPositions", "get", f"{ACCOUNT}/positions", parameters),
        ("RemoveAccount", "delete", ACCOUNT, parameters),
    ]


LINKS: dict[tuple[str, str, str], list[Target]] = {
    ("post", "/accounts", "201"): _on_account(NEW_ACCOUNT),
    ("post", "/brokers/demo-accounts", "201"): _on_account(NEW_ACCOUNT),
    ("put", f"{ACCOUNT}/portfolio", "200"): [("GetPortfolio", "get", f"{ACCOUNT}/portfolio", SAME_ACCOUNT)],
    ("post", f"{ACCOUNT}/orders", "202"): [
        ("GetOrder", "get", ORDER, NEW_ORDER),
        ("ModifyOrder", "patch", ORDER, NEW_ORDER),
        ("CancelOrder", "delete", ORDER, NEW_ORDER),
    ],
    ("post", "/tokens", "201"): [
        ("RevokeToken", "delete", "/tokens/{token_id}", {"token_id": "$response.body#/id"})
    ],
}


def add_links(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``document`` with :data:`LINKS` on its answers; ``KeyError`` names an operation that is missing."""
    paths = document["paths"]

    def operation(method: str, path: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = paths[prefix + path][method]
        except KeyError:
            raise KeyError(f"OpenAPI links: no operation {method.upper()} {prefix}{path}") from None
        return found

    for (method, path, status), targets in LINKS.items():
        answer = operation(method, path)["responses"][status]
        answer["links"] = {
            name: {"operationId": operation(m, p)["operationId"], "parameters": dict(parameters)}
            for name, m, p, parameters in targets
        }
    return document
