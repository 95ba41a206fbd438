"""The deployed API's front door, read from the templates: the Cognito app client allows only what the desktop app
uses, MFA is a parameter that defaults to ON, and the stage throttle sits well above the per-user limit (which the
router enforces) because it is one bucket for every caller, spent before the JWT is checked."""
from __future__ import annotations

import pytest

from support.cfn_support import CFN_DIR, PROFILES, ROOT_TEMPLATE, app_stack, load, resources
from tlfif_common import names, ratelimit

API = CFN_DIR / "api.yaml"


def _only(stacks, resource_type: str) -> dict:
    (_, _, resource), = resources(stacks, resource_type)
    return resource["Properties"]


@pytest.mark.parametrize("profile", PROFILES)
def test_the_app_client_allows_the_hosted_code_flow_and_refresh_only(profile):
    client = _only(app_stack(profile), "AWS::Cognito::UserPoolClient")
    # sign-in: hosted UI, authorization code + PKCE (a public client, no secret); afterwards: refresh token only
    assert client["AllowedOAuthFlows"] == ["code"] and client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["GenerateSecret"] is False
    assert client["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH"]  # no SRP, no password, no custom auth


def test_the_desktop_app_uses_nothing_else():
    """The app's login code asks Cognito for an authorization code and refreshes; it never calls InitiateAuth."""
    source = (CFN_DIR.parent.parent / "app" / "services" / "auth.py").read_text()
    assert 'code_challenge_method="S256"' in source and "oauth.refresh_token(" in source
    for direct_flow in ("InitiateAuth", "initiate_auth", "USER_SRP_AUTH", "USER_PASSWORD_AUTH"):
        assert direct_flow not in source


@pytest.mark.parametrize("profile", PROFILES)
def test_mfa_is_on_unless_the_deployer_chooses_optional(profile):
    root = load(ROOT_TEMPLATE)
    assert root["Parameters"]["MfaMode"]["Default"] == "ON"
    assert set(root["Parameters"]["MfaMode"]["AllowedValues"]) == {"ON", "OPTIONAL"}
    (api,) = [r for r in root["Resources"].values() if r["Properties"].get("TemplateURL") == "./api.yaml"]
    assert api["Properties"]["Parameters"]["MfaMode"] == {"Ref": "MfaMode"}
    pool = _only(app_stack(profile), "AWS::Cognito::UserPool")
    assert pool["MfaConfiguration"] == {"Ref": "MfaMode"}
    assert pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]  # an authenticator app; SMS would need an SNS role and cost
    assert load(API)["Parameters"]["MfaMode"]["Default"] == "ON"  # the child stack alone defaults to ON too


@pytest.mark.parametrize("profile", PROFILES)
def test_stage_throttle_is_far_above_the_per_user_limit(profile):
    stacks = app_stack(profile)
    settings = _only(stacks, "AWS::ApiGatewayV2::Stage")["DefaultRouteSettings"]
    rate, burst = settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]
    assert (rate, burst) == (names.API_THROTTLE_RATE, names.API_THROTTLE_BURST)  # the local gateway uses the same
    per_user = int(load(API)["Parameters"]["RateLimitRps"]["Default"])
    assert per_user == ratelimit.DEFAULT_RPS == 5
    # ten users at their own limit still fit; a stranger spending the shared bucket must send ten times that
    assert rate >= 10 * per_user and burst >= 2 * rate


@pytest.mark.parametrize("profile", PROFILES)
def test_no_waf_is_attached_to_the_http_api(profile):
    """AWS WAF protects REST APIs, not HTTP APIs (WAFv2 API reference, "protected resource types"): an association
    with this API's stage would fail on deploy. The per-user limit and the stage throttle are the controls."""
    stacks = app_stack(profile)
    assert not list(resources(stacks, "AWS::WAFv2::WebACLAssociation"))
    assert _only(stacks, "AWS::ApiGatewayV2::Api")["ProtocolType"] == "HTTP"
