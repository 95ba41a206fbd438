"""The RQL's security and sizing promises, proven on the parsed templates in BOTH cost profiles.

Each test evaluates the root stack and its nested stacks as CloudFormation would for one CostProfile (conditions
evaluated, Fn::If resolved: tests/support/cfn_support.py) plus the stand-alone pipeline stack.
"""
from __future__ import annotations

import json

import pytest

from support.cfn_support import PROFILES, actions, all_stacks, app_stack, as_list, resources, statements, sub_text
from tlfif_common import names
from tlfif_watcher.dr_selftest import DR_METRICS_NAMESPACE

WORLD = ("0.0.0.0/0", "::/0")


def router_route_keys() -> set[str]:
    """The keys of the router's route table (tests/test_api_contract.py: they are tlfif_common.api.ROUTE_KEYS)."""
    from tlfif_router.routes import ROUTES

    return set(ROUTES)


@pytest.fixture(scope="module", params=PROFILES)
def profile(request):
    return request.param


@pytest.fixture(scope="module")
def stacks(profile):
    return all_stacks(profile)


def _ingress_rules(stacks):
    for stack, name, res in resources(stacks, "AWS::EC2::SecurityGroup"):
        for rule in as_list(res["Properties"].get("SecurityGroupIngress")):
            yield f"{stack.name}:{name}", rule
    for stack, name, res in resources(stacks, "AWS::EC2::SecurityGroupIngress"):
        yield f"{stack.name}:{name}", res["Properties"]


def _covers_port(rule, port):
    if str(rule.get("IpProtocol")) in ("-1", "all"):
        return True
    low, high = int(rule.get("FromPort", -1)), int(rule.get("ToPort", -1))
    return low <= port <= high


def test_no_world_open_ingress(stacks):
    rules = list(_ingress_rules(stacks))
    assert rules, "expected ingress rules to inspect"
    for where, rule in rules:
        assert rule.get("CidrIp") not in WORLD and rule.get("CidrIpv6") not in WORLD, f"{where} is open to the world"
        assert "CidrIp" not in rule and "CidrIpv6" not in rule, f"{where}: ingress only from security groups"


def test_nothing_listens_on_ssh(stacks):
    for where, rule in _ingress_rules(stacks):
        assert not _covers_port(rule, 22), f"{where} opens port 22"
    for _stack, name, res in resources(stacks, "AWS::EC2::LaunchTemplate"):
        assert "KeyName" not in res["Properties"]["LaunchTemplateData"], f"{name}: no key pair, no SSH"


def test_every_volume_and_launch_template_is_encrypted(stacks):
    templates = list(resources(stacks, "AWS::EC2::LaunchTemplate"))
    assert templates
    for _stack, name, res in templates:
        mappings = res["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"]
        assert mappings and all(m["Ebs"]["Encrypted"] is True for m in mappings), name
    for _stack, name, res in resources(stacks, "AWS::EC2::Volume"):
        assert res["Properties"].get("Encrypted") is True, name
    for _stack, name, res in resources(stacks, "AWS::EC2::Instance"):
        assert "LaunchTemplate" in res["Properties"], f"{name} must come from the encrypted launch template"
        for mapping in as_list(res["Properties"].get("BlockDeviceMappings")):
            assert mapping["Ebs"]["Encrypted"] is True, name


def test_gpu_root_volume_is_gp3_sized_by_profile(stacks, profile):
    """full: the RQL's 100 GiB at 250 MiB/s; lean: 30 GiB at gp3's free 125 MiB/s (billed while stopped)."""
    (_, _, template), = resources(stacks, "AWS::EC2::LaunchTemplate")
    data = template["Properties"]["LaunchTemplateData"]
    assert data["InstanceType"] == {"Ref": "InstanceType"}
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    expected = ("gp3", 100, 3000, 250) if profile == "full" else ("gp3", 30, 3000, 125)
    assert (ebs["VolumeType"], ebs["VolumeSize"], ebs["Iops"], ebs["Throughput"]) == expected


def test_imdsv2_required_with_hop_limit_one(stacks):
    for _stack, name, res in resources(stacks, "AWS::EC2::LaunchTemplate"):
        options = res["Properties"]["LaunchTemplateData"]["MetadataOptions"]
        assert options["HttpTokens"] == "required", name
        assert options["HttpPutResponseHopLimit"] == 1, name


def test_gpu_public_ip_only_in_lean(profile, stacks):
    (_, _, template), = resources(stacks, "AWS::EC2::LaunchTemplate")
    (interface,) = template["Properties"]["LaunchTemplateData"]["NetworkInterfaces"]
    assert interface["AssociatePublicIpAddress"] is (profile == "lean")
    for _stack, name, res in resources(stacks, "AWS::EC2::Subnet"):
        assert res["Properties"]["MapPublicIpOnLaunch"] is False, name


def test_buckets_block_public_access_encrypt_and_require_tls(stacks):
    buckets = {(stack.name, name): res for stack, name, res in resources(stacks, "AWS::S3::Bucket")}
    assert len(buckets) >= 3
    tls_only = set()
    for stack, _name, res in resources(stacks, "AWS::S3::BucketPolicy"):
        for statement in as_list(res["Properties"]["PolicyDocument"]["Statement"]):
            if (statement["Effect"] == "Deny" and statement.get("Principal") == "*"
                    and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}):
                tls_only.add((stack.name, res["Properties"]["Bucket"]["Ref"]))
    for (stack_name, name), res in buckets.items():
        props = res["Properties"]
        block = props["PublicAccessBlockConfiguration"]
        assert all(block[key] is True for key in
                   ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")), name
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), name
        assert "AccessControl" not in props, f"{name}: no canned ACLs"
        assert (stack_name, name) in tls_only, f"{name} has no TLS-only bucket policy"


def test_responses_lifecycle_glacier_30d_delete_1y(stacks):
    (_, _, bucket), = [(s, n, r) for s, n, r in resources(stacks, "AWS::S3::Bucket") if n == "ResponsesBucket"]
    props = bucket["Properties"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"  # MFA delete builds on it
    (rule,) = [r for r in props["LifecycleConfiguration"]["Rules"] if r.get("Transitions")]
    assert rule["Transitions"] == [{"StorageClass": "GLACIER", "TransitionInDays": 30}]
    assert rule["ExpirationInDays"] == 365


def test_no_wildcard_actions_and_no_full_access_policies(stacks):
    checked = 0
    for where, statement in statements(stacks):
        assert "NotAction" not in statement, f"{where}: NotAction grants too much"
        if statement["Effect"] != "Allow":
            continue
        for action in actions(statement):
            checked += 1
            assert action != "*" and not action.endswith(":*"), f"{where} allows {action}"
    assert checked > 20
    for stack, name, res in resources(stacks, "AWS::IAM::Role"):
        for arn in as_list(res["Properties"].get("ManagedPolicyArns")):
            text = sub_text(arn) or json.dumps(arn)
            assert "FullAccess" not in text and "AdministratorAccess" not in text and "PowerUser" not in text, \
                f"{stack.name}:{name} attaches {text}"


def test_wildcard_resources_only_for_actions_without_resource_scope(stacks):
    """`Resource: "*"` only where AWS offers no resource ARN (describe/list, metrics, Cost Explorer)."""
    no_scope = ("ec2:Describe", "cloudwatch:PutMetricData", "cloudwatch:GetMetric", "ce:GetCostAndUsage",
                "ssm:DescribeInstanceInformation", "ssm:List", "ssm:GetCommandInvocation")
    for where, statement in statements(stacks):
        if statement["Effect"] == "Allow" and "*" in as_list(statement.get("Resource")):
            for action in actions(statement):
                assert action.startswith(no_scope), f"{where}: {action} on Resource *"
            if "cloudwatch:PutMetricData" in actions(statement):
                (namespaces,) = statement["Condition"]["StringEquals"].values()
                assert list(statement["Condition"]) == ["StringEquals"]
                assert set(as_list(namespaces)) <= {names.METRICS_NAMESPACE, DR_METRICS_NAMESPACE}, where


def test_ec2_start_stop_only_on_tagged_instances(stacks):
    found = 0
    for where, statement in statements(stacks):
        if statement["Effect"] != "Allow":
            continue
        if {"ec2:StartInstances", "ec2:StopInstances"} & set(actions(statement)):
            found += 1
            equals = statement["Condition"]["StringEquals"]
            assert equals[f"aws:ResourceTag/{names.TAG_PROJECT_KEY}"] == names.TAG_PROJECT_VALUE, where
            assert f"aws:ResourceTag/{names.TAG_ROLE_KEY}" in equals, where
            assert sub_text(statement["Resource"]).endswith(":instance/*"), where
    assert found >= 4  # router, GPU self-stop, BudgetKiller, idle-miss automation (+ the bake builder)


def test_gpu_stops_only_itself(stacks):
    (_, _, role), = [(s, n, r) for s, n, r in resources(stacks, "AWS::IAM::Role") if n == "GpuRole"]
    (statement,) = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
                    if "ec2:StopInstances" in actions(s)]
    assert actions(statement) == ["ec2:StopInstances"]
    source = sub_text(statement["Condition"]["ArnEquals"]["ec2:SourceInstanceARN"])
    assert source.endswith(":instance/${!ec2:InstanceID}")
    assert statement["Condition"]["StringEquals"][f"aws:ResourceTag/{names.TAG_ROLE_KEY}"] == names.TAG_ROLE_GPU


def test_api_stage_throttle_5_rps_and_json_access_log(stacks):
    (_, _, stage), = resources(stacks, "AWS::ApiGatewayV2::Stage")
    props = stage["Properties"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] == names.API_THROTTLE_RATE == 50  # per user: 5
    assert props["DefaultRouteSettings"]["ThrottlingBurstLimit"] == names.API_THROTTLE_BURST
    assert json.loads(props["AccessLogSettings"]["Format"]) == names.API_ACCESS_LOG_FORMAT
    target = props["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    groups = {n: r for _s, n, r in resources(stacks, "AWS::Logs::LogGroup")}
    assert groups[target]["Properties"]["LogGroupName"] == names.LOG_GROUP_API == "/apigw/tl-fif"


def test_api_routes_all_behind_the_cognito_jwt_authorizer(stacks):
    routes = {r["Properties"]["RouteKey"]: r["Properties"]
              for _s, _n, r in resources(stacks, "AWS::ApiGatewayV2::Route")}
    assert set(routes) == router_route_keys()  # every route the router serves, and nothing else
    for key, route in routes.items():
        assert route["AuthorizationType"] == "JWT", key
    (_, _, authorizer), = resources(stacks, "AWS::ApiGatewayV2::Authorizer")
    assert sub_text(authorizer["Properties"]["JwtConfiguration"]["Issuer"]).startswith("https://cognito-idp.")


def test_lambdas_are_python312_512mb_30s(stacks):
    functions = list(resources(stacks, "AWS::Lambda::Function"))
    assert len(functions) >= 3
    for stack, name, res in functions:
        props = res["Properties"]
        assert (props["Runtime"], props["MemorySize"], props["Timeout"]) == ("python3.12", 512, 30), \
            f"{stack.name}:{name}"


def test_router_published_behind_alias_prod(stacks):
    aliases = {n: r["Properties"] for _s, n, r in resources(stacks, "AWS::Lambda::Alias")}
    assert aliases["RouterAlias"]["Name"] == "prod"
    (_, _, integration), = resources(stacks, "AWS::ApiGatewayV2::Integration")
    assert integration["Properties"]["IntegrationUri"] == {"Ref": "RouterAlias"}


def test_cognito_client_is_public_pkce_code_flow_60_min(stacks):
    (_, _, client), = resources(stacks, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["GenerateSecret"] is False
    assert props["AllowedOAuthFlows"] == ["code"]
    assert props["IdTokenValidity"] == 60 and props["TokenValidityUnits"]["IdToken"] == "minutes"
    callbacks = [sub_text(url) for url in props["CallbackURLs"]]
    assert callbacks == ["http://localhost:${RedirectPort}/callback", "http://127.0.0.1:${RedirectPort}/callback"]


def test_redis_reachable_from_lambda_and_gpu_groups_only(stacks):
    sources = set()
    for where, rule in _ingress_rules(stacks):
        if rule.get("GroupId") == {"Ref": "RedisSecurityGroup"}:
            assert (rule["FromPort"], rule["ToPort"], rule["IpProtocol"]) == (6379, 6379, "tcp"), where
            sources.add(rule["SourceSecurityGroupId"]["Ref"])
    assert sources == {"LambdaSecurityGroup", "GpuSecurityGroup"}
    (network,) = [s for s in stacks if s.name == "network.yaml"]
    assert not network.resources["RedisSecurityGroup"]["Properties"].get("SecurityGroupIngress")


def test_gpu_ingress_only_443_from_the_nlb_in_full_and_nothing_in_lean(profile, stacks):
    rules = [rule for _w, rule in _ingress_rules(stacks) if rule.get("GroupId") == {"Ref": "GpuSecurityGroup"}]
    if profile == "full":
        assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in rules] == [(443, {"Ref": "NlbSecurityGroup"})]
    else:
        assert rules == []


def test_profile_pieces(profile):
    stacks = app_stack(profile)
    kinds = [res["Type"] for _s, _n, res in resources(stacks)]
    endpoints = [res["Properties"].get("VpcEndpointType", "Gateway")
                 for _s, _n, res in resources(stacks, "AWS::EC2::VPCEndpoint")]
    load_balancers = [res["Properties"]
                      for _s, _n, res in resources(stacks, "AWS::ElasticLoadBalancingV2::LoadBalancer")]
    if profile == "full":
        assert kinds.count("AWS::EC2::NatGateway") == 1
        assert endpoints.count("Interface") >= 4 and endpoints.count("Gateway") == 2
        assert [lb["Scheme"] for lb in load_balancers] == ["internal"]
        assert kinds.count("AWS::ElastiCache::ReplicationGroup") == 1
        assert "AWS::ElastiCache::ServerlessCache" not in kinds
        (_, _, node), = resources(stacks, "AWS::ElastiCache::ReplicationGroup")
        assert node["Properties"]["CacheNodeType"] == "cache.t4g.small"
    else:
        assert "AWS::EC2::NatGateway" not in kinds and "AWS::EC2::EIP" not in kinds
        assert endpoints == ["Gateway", "Gateway"]
        assert load_balancers == [] and not any(k.startswith("AWS::ElasticLoadBalancingV2::") for k in kinds)
        assert kinds.count("AWS::ElastiCache::ServerlessCache") == 1
        assert "AWS::ElastiCache::ReplicationGroup" not in kinds


def test_lean_router_outside_vpc_with_an_in_vpc_queue_function(profile):
    functions = {n: r["Properties"] for _s, n, r in resources(app_stack(profile), "AWS::Lambda::Function")}
    router = functions["RouterFunction"]
    if profile == "full":
        assert "VpcConfig" in router and "QueueFunction" not in functions
    else:
        assert "VpcConfig" not in router
        assert functions["QueueFunction"]["VpcConfig"]["SubnetIds"] == [{"Ref": "PrivateSubnetA"}]
        assert functions["QueueFunction"]["Handler"] == "tlfif_router.queue_handler.handler"


def test_network_addressing_is_the_rql_plan(stacks):
    (network,) = [s for s in stacks if s.name == "network.yaml"]
    assert network.resources["Vpc"]["Properties"]["CidrBlock"] == "10.20.0.0/22"
    plan = {"PublicSubnetA": "10.20.0.0/24", "PrivateSubnetA": "10.20.1.0/24", "PrivateSubnetB": "10.20.2.0/24"}
    assert {n: network.resources[n]["Properties"]["CidrBlock"] for n in plan} == plan
