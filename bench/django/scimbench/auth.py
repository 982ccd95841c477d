"""Bearer-token access check for django-scim2-server (its SCIM2_SERVER_AUTH_CHECK)."""
import hmac
import os


def bearer_token(request) -> bool:
    expected = "Bearer " + os.environ["BENCH_TOKEN"]
    return hmac.compare_digest(request.headers.get("Authorization", ""), expected)
