"""What the README promises about template.yaml, checked on the SAM transform's output.

Run: bash scripts/template-check.sh (installs the pinned tools, then checkov and this file).
"""

from __future__ import annotations

import re

import pytest

from cfn import ROOT, RuleFailed, actions, effective, of_type, source, statements

FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "index.ts").is_file())
KIND = {name: row["Kind"] for name, row in source()["Mappings"]["Functions"].items()}
API_KEY = [f for f in FUNCTIONS if KIND[f] == "api-key"]
DATABASE = [f for f in FUNCTIONS if KIND[f] != "api-key"]
ALTERNATING = [f for f in FUNCTIONS if KIND[f] == "alternating-users"]

FUNCTION_ARN = {"Fn::GetAtt": ["Function", "Arn"]}
OPTIONAL_TYPES = {
    "AWS::SecretsManager::RotationSchedule",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::Events::Rule",
    "AWS::CloudWatch::Alarm",
}
PATTERN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db/*"
TOPIC = "arn:aws:sns:us-east-1:123456789012:rotation-alarms"


def deploy(function: str, **params):
    return effective({"RotationFunction": function, **params})["Resources"]


def test_every_function_folder_is_a_choice():
    assert FUNCTIONS, "no functions/*/index.ts"
    assert sorted(source()["Parameters"]["RotationFunction"]["AllowedValues"]) == FUNCTIONS
    assert "Default" not in source()["Parameters"]["RotationFunction"], "a stack must say which function it is"


def test_runtime_is_named_once():
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    assert len(re.findall(r"^\s*Runtime:", text, re.M)) == 1


@pytest.mark.parametrize("function", FUNCTIONS)
def test_deploys_alone_with_its_own_role(function):
    resources = deploy(function)
    functions = of_type(resources, "AWS::Lambda::Function")
    roles = of_type(resources, "AWS::IAM::Role")
    assert list(functions) == ["Function"]
    assert list(roles) == ["RotationRole"]
    props = functions["Function"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["RotationRole", "Arn"]}
    assert props["Environment"]["Variables"]["ROTATION_FUNCTION"] == function
    assert props["Handler"] == "index.handler"
    for policy in of_type(resources, "AWS::IAM::RolePolicy").values():
        assert policy["Properties"]["RoleName"] == {"Ref": "RotationRole"}
    # Nothing is named after a fixed string: a second stack of the same function can coexist.
    assert "FunctionName" not in props
    assert "RoleName" not in roles["RotationRole"]["Properties"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("pattern", ["", PATTERN])
def test_every_action_on_rotated_secrets_requires_allow_rotation_lambda_arn(function, pattern):
    resources = deploy(function, SecretArnPattern=pattern)
    readable = {"ReadMasterSecrets", "ReadManagingSecrets"}
    for owner, statement in statements(resources):
        secret_actions = [a for a in actions(statement) if a.startswith("secretsmanager:")]
        if not secret_actions or secret_actions == ["secretsmanager:GetRandomPassword"]:
            continue
        if statement.get("Sid") in readable:
            # Master / managing secrets: read only, never the rotated secrets' pattern.
            assert set(secret_actions) <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
            resource = statement["Resource"]
            assert "rds!" in str(resource) or "api-key-admin/" in str(resource), resource
            # RequireReaderTag=true by default: only secrets tagged for this function.
            tags = statement["Condition"]["StringLike"]["secretsmanager:ResourceTag/RotationReaders"]
            assert tags == [function, f"{function} *", f"* {function}", f"* {function} *"]
            continue
        assert statement["Condition"] == {
            "StringEquals": {"secretsmanager:resource/AllowRotationLambdaArn": FUNCTION_ARN}
        }, (owner, statement)
        if pattern:
            assert statement["Resource"] == pattern


@pytest.mark.parametrize("function", FUNCTIONS)
def test_grants_only_what_its_kind_uses(function):
    granted = {a for _, s in statements(deploy(function)) for a in actions(s)}
    expected = {
        "secretsmanager:DescribeSecret",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    if KIND[function] != "api-key":
        expected.add("secretsmanager:GetRandomPassword")
    if KIND[function] == "alternating-users":
        expected |= {"rds:DescribeDBInstances", "rds:DescribeDBClusters"}
    assert granted == expected


@pytest.mark.parametrize("function", FUNCTIONS)
def test_kms_only_through_secrets_manager_for_the_secrets_it_reads(function):
    (kms,) = [s for _, s in statements(deploy(function)) if "kms:Decrypt" in actions(s)]
    assert kms["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
    }
    contexts = kms["Condition"]["StringLike"]["kms:EncryptionContext:SecretARN"]
    assert len(contexts) == (1 if KIND[function] == "single-user" else 2)


def test_reader_tag_can_be_switched_off():
    for function in ("postgres-alternating-users", "stripe-api-key"):
        (read,) = [
            s
            for _, s in statements(deploy(function, RequireReaderTag="false"))
            if s.get("Sid") in ("ReadMasterSecrets", "ReadManagingSecrets")
        ]
        assert "Condition" not in read


@pytest.mark.parametrize("function", FUNCTIONS)
def test_optional_resources_absent_by_default(function):
    resources = deploy(function)
    assert not [r for r in resources.values() if r["Type"] in OPTIONAL_TYPES]
    permission = resources["InvokePermission"]["Properties"]
    assert "SourceArn" not in permission
    assert "VpcConfig" not in resources["Function"]["Properties"]
    assert list(effective({"RotationFunction": function})["Outputs"]) == ["FunctionArn"]


@pytest.mark.parametrize("function", ["postgres-single-user", "twilio-api-key"])
def test_rotation_schedule_when_a_secret_is_given(function):
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf"
    resources = deploy(function, RotateSecretArn=secret, RotationSchedule="rate(7 days)")
    (schedule,) = of_type(resources, "AWS::SecretsManager::RotationSchedule").values()
    assert schedule["Properties"] == {
        "SecretId": secret,
        "RotationLambdaARN": FUNCTION_ARN,
        "RotationRules": {"ScheduleExpression": "rate(7 days)"},
    }
    assert schedule["DependsOn"] == "InvokePermission"
    with pytest.raises(ValueError, match="RotationSchedule"):
        deploy(function, RotateSecretArn=secret, RotationSchedule="rate(30 minutes)")


def test_alarm_email_creates_a_topic_a_rule_and_alarms():
    resources = deploy("mysql-single-user", AlarmEmail="oncall@example.com")
    assert set(of_type(resources, "AWS::SNS::Topic")) == {"AlarmTopic"}
    (subscription,) = of_type(resources, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Endpoint"] == "oncall@example.com"
    (rule,) = of_type(resources, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {"eventSource": ["secretsmanager.amazonaws.com"], "eventName": ["RotationFailed"]},
    }
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": "AlarmTopic"}
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert set(alarms) == {"ErrorsAlarm", "StepFailureAlarm", "GracePeriodDegradedAlarm"}
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    policy = of_type(resources, "AWS::SNS::TopicPolicy")["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
    principals = {s["Principal"]["Service"] for s in policy["Statement"]}
    assert principals == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}


def test_alarm_metrics_match_what_the_code_emits():
    # shared/rotation/metrics.ts (EMF through Powertools): StepOutcome with dimensions
    # service, FunctionName, step, outcome; Degraded with service, FunctionName, Feature
    # (test/unit/metrics.test.ts; FunctionName is AWS_LAMBDA_FUNCTION_NAME, set in Lambda).
    resources = deploy("mysql-single-user", AlarmTopicArn=TOPIC)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    steps = set()
    for query in alarms["StepFailureAlarm"]["Properties"]["Metrics"]:
        if "MetricStat" not in query:
            continue
        metric = query["MetricStat"]["Metric"]
        assert (metric["Namespace"], metric["MetricName"]) == ("SecretsRotation", "StepOutcome")
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert set(dims) == {"service", "FunctionName", "step", "outcome"}
        assert dims["service"] == "mysql-single-user" and dims["outcome"] == "failure"
        # This stack's function only: another stack of mysql-single-user has the same service.
        assert dims["FunctionName"] == {"Ref": "Function"}
        steps.add(dims["step"])
    assert steps == {"createSecret", "setSecret", "testSecret", "finishSecret"}
    degraded = alarms["GracePeriodDegradedAlarm"]["Properties"]
    assert {d["Name"]: d["Value"] for d in degraded["Dimensions"]} == {
        "service": "mysql-single-user",
        "FunctionName": {"Ref": "Function"},
        "Feature": "MysqlRetainCurrentPassword",
    }
    code = (ROOT / "shared/rotation/metrics.ts").read_text(encoding="utf-8")
    assert "FunctionName: functionName" in code
    code = (ROOT / "shared/databases/mysql.ts").read_text(encoding="utf-8")
    assert "'MysqlRetainCurrentPassword'" in code
    assert alarms["ErrorsAlarm"]["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "Function"}}]
    # A given topic: nothing created, everything sent there.
    assert not of_type(resources, "AWS::SNS::Topic")
    assert of_type(resources, "AWS::Events::Rule")["RotationFailedRule"]["Properties"]["Targets"][0]["Arn"] == TOPIC


def test_degraded_alarm_only_where_a_feature_can_degrade():
    alarms = of_type(deploy("postgres-single-user", AlarmTopicArn=TOPIC), "AWS::CloudWatch::Alarm")
    assert set(alarms) == {"ErrorsAlarm", "StepFailureAlarm"}


def test_one_alarm_target_only():
    with pytest.raises(RuleFailed, match="not both"):
        deploy("postgres-single-user", AlarmTopicArn=TOPIC, AlarmEmail="oncall@example.com")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_invoke_permission_narrowed_by_secret_pattern(function):
    permission = deploy(function, SecretArnPattern=PATTERN)["InvokePermission"]["Properties"]
    assert permission["SourceArn"] == PATTERN
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_vpc_for_database_functions_only(function):
    resources = deploy(function, SubnetIds="subnet-1,subnet-2", SecurityGroupIds="sg-1")
    props = resources["Function"]["Properties"]
    managed = resources["RotationRole"]["Properties"].get("ManagedPolicyArns", [])
    if function in DATABASE:
        assert props["VpcConfig"] == {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
        assert managed == [
            {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}
        ]
    else:
        assert "VpcConfig" not in props and managed == []


def test_each_function_gets_only_its_settings():
    env = {f: deploy(f)["Function"]["Properties"]["Environment"]["Variables"] for f in FUNCTIONS}
    assert "MYSQL_RETAIN_CURRENT_PASSWORD" in env["mysql-single-user"]
    assert "MYSQL_RETAIN_CURRENT_PASSWORD" not in env["mysql-alternating-users"]
    assert "STRIPE_API_VERSION" in env["stripe-api-key"] and "STRIPE_API_VERSION" not in env["twilio-api-key"]
    for function in API_KEY:
        assert "KEY_PROPAGATION_TIMEOUT_SECONDS" in env[function] and "PASSWORD_LENGTH" not in env[function]
    for function in DATABASE:
        assert env[function]["NODE_EXTRA_CA_CERTS"] == "/var/runtime/ca-cert.pem"


def test_key_propagation_wait_fits_in_the_api_key_timeout():
    limit = source()["Parameters"]["KeyPropagationTimeoutSeconds"]["MaxValue"]
    code = (ROOT / "shared/strategies/api-keys.ts").read_text(encoding="utf-8")
    (in_code,) = re.findall(r"MAX_KEY_PROPAGATION_SECONDS = (\d+)", code)
    assert int(in_code) == limit
    for function in API_KEY:
        timeout = deploy(function)["Function"]["Properties"]["Timeout"]
        # testSecret: the wait, plus reading two secrets, listing keys and the handler's margin.
        assert timeout >= limit + 30, (function, timeout, limit)
    for function in DATABASE:
        assert deploy(function)["Function"]["Properties"]["Timeout"] == 60


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_option_at_once_still_one_function_and_one_role(function):
    resources = deploy(
        function,
        SecretArnPattern=PATTERN,
        RotateSecretArn="arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db/app-AbCdEf",
        AlarmEmail="oncall@example.com",
        SubnetIds="subnet-1,subnet-2",
        SecurityGroupIds="sg-1",
        Tracing="Active",
    )
    assert list(of_type(resources, "AWS::Lambda::Function")) == ["Function"]
    assert list(of_type(resources, "AWS::IAM::Role")) == ["RotationRole"]
    assert set(of_type(resources, "AWS::SecretsManager::RotationSchedule")) == {"Rotation"}
    assert {"ErrorsAlarm", "StepFailureAlarm"} <= set(of_type(resources, "AWS::CloudWatch::Alarm"))
    xray = [s for _, s in statements(resources) if "xray:PutTraceSegments" in actions(s)]
    assert len(xray) == 1


@pytest.mark.parametrize("function", ["mysql-single-user", "postgres-alternating-users", "twilio-api-key"])
def test_created_topic_takes_alarms_only_from_this_stack(function):
    # Review finding: the policy let any CloudWatch alarm of the account (alarm:*) publish, so
    # anyone allowed to create an alarm could page this topic's recipients. Only the stack's own
    # alarms, and only the stack's own rule, may publish.
    resources = deploy(function, AlarmEmail="oncall@example.com")
    policy = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]
    alarms = sorted(of_type(resources, "AWS::CloudWatch::Alarm"))
    by_service = {s["Principal"]["Service"]: s for s in policy["Statement"]}
    assert set(by_service) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] == "sns:Publish"
        assert statement["Resource"] == {"Ref": "AlarmTopic"}
        assert set(statement["Condition"]) == {"ArnEquals"} | (
            {"StringEquals"} if statement is by_service["cloudwatch.amazonaws.com"] else set()
        ), "no ArnLike: no wildcard source"
    assert by_service["events.amazonaws.com"]["Condition"]["ArnEquals"] == {
        "aws:SourceArn": {"Fn::GetAtt": ["RotationFailedRule", "Arn"]}
    }
    sources = by_service["cloudwatch.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == alarms
    assert all(s["Fn::GetAtt"][1] == "Arn" for s in sources)


# Lambda's own pattern for AddPermission's SourceArn (botocore, lambda 2015-03-31, shape Arn).
LAMBDA_SOURCE_ARN = (
    r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?"
    r":(\d{12})?:(.*)"
)


@pytest.mark.parametrize(
    ("pattern", "accepted"),
    [
        (PATTERN, True),
        ("arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:db-??????", True),
        ("arn:aws:secretsmanager:*:123456789012:secret:prod/*", False),
        ("arn:aws:secretsmanager:us-east-1:*:secret:prod/*", False),
        ("arn:aws:secretsmanager:us-?ast-1:123456789012:secret:prod/*", False),
        ("arn:aws:secretsmanager:eu-west-1:12345678901:secret:x", False),
        # Lambda takes an empty Region and account, but no secret ARN the service sends has them.
        ("arn:aws:secretsmanager:::secret:prod/*", False),
    ],
)
def test_secret_pattern_is_one_lambda_accepts_as_source_arn(pattern, accepted):
    # Review finding: SecretArnPattern allowed * or ? in the Region and account ([^:]*), which IAM
    # takes but Lambda's SourceArn does not: the stack failed at InvokePermission and rolled back.
    if accepted:
        assert re.fullmatch(LAMBDA_SOURCE_ARN, pattern)
        permission = deploy("postgres-single-user", SecretArnPattern=pattern)["InvokePermission"]
        assert permission["Properties"]["SourceArn"] == pattern
    else:
        with pytest.raises(ValueError, match="SecretArnPattern"):
            deploy("postgres-single-user", SecretArnPattern=pattern)


@pytest.mark.parametrize("function", ["postgres-alternating-users", "stripe-api-key"])
def test_reader_name_gives_each_stack_its_own_tag_word(function):
    # Review finding: the tag named the function, which every stack of it shares, so any stack of
    # postgres-alternating-users could read every master tagged for any other. ReaderName makes
    # the word the stack's own.
    (read,) = [
        s
        for _, s in statements(deploy(function, ReaderName="orders-db"))
        if s.get("Sid") in ("ReadMasterSecrets", "ReadManagingSecrets")
    ]
    tags = read["Condition"]["StringLike"]["secretsmanager:ResourceTag/RotationReaders"]
    assert tags == ["orders-db", "orders-db *", "* orders-db", "* orders-db *"]


@pytest.mark.parametrize("name", ["*", "orders db", "orders?", "-x", "a" * 129])
def test_reader_name_refuses_spaces_and_wildcards(name):
    # A space would split the word; * and ? are wildcards in StringLike and would widen the grant.
    with pytest.raises(ValueError, match="ReaderName"):
        deploy("postgres-alternating-users", ReaderName=name)
