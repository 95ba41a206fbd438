"""Where the app may send tokens and prompts: https anywhere, http only to this machine's loopback."""
from __future__ import annotations

import pytest

from app.models.settings import AwsSettings
from app.services.endpoints import AwsEndpoint, EndpointUnavailable, InsecureEndpoint
from app.application import _configured_endpoint

COGNITO = "https://tl-fif-1.auth.eu-central-1.amazoncognito.com"


def settings(api_url: str, auth_domain: str = COGNITO) -> AwsSettings:
    return AwsSettings(api_url=api_url, client_id="c", auth_domain=auth_domain, region="")


@pytest.mark.parametrize("api_url, auth_domain", [
    ("http://abc.execute-api.eu-central-1.amazonaws.com", COGNITO),
    ("https://abc.execute-api.eu-central-1.amazonaws.com", "http://tl-fif-1.auth.eu-central-1.amazoncognito.com"),
    ("http://localhost.example.com:8080", COGNITO),
    ("http://10.0.0.5:8080", COGNITO),
    ("ftp://127.0.0.1/x", COGNITO),
])
def test_a_clear_text_endpoint_off_this_machine_is_refused(api_url, auth_domain):
    with pytest.raises(InsecureEndpoint, match="https://"):
        AwsEndpoint.from_settings(settings(api_url, auth_domain))
    refused = _configured_endpoint(settings(api_url, auth_domain))
    with pytest.raises(EndpointUnavailable, match="https://"):  # every call then says why
        refused.get(0)


@pytest.mark.parametrize("api_url", ["https://abc.execute-api.eu-central-1.amazonaws.com", "http://127.0.0.1:8080",
                                     "http://localhost:8080", "http://[::1]:8080", "http://127.0.0.2:1"])
def test_https_or_loopback_http_is_accepted(api_url):
    endpoint = AwsEndpoint.from_settings(settings(api_url))
    assert endpoint.api_url == api_url
    assert endpoint.issuer_prefix == "https://cognito-idp.eu-central-1.amazonaws.com/"  # from the hosted UI domain
