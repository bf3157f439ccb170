"""The SAM template as CloudFormation would create it for a given set of parameters.

`effective(params)` runs the real SAM transform (aws-sam-translator, the library CloudFormation's
AWS::Serverless transform is built from), then does what CloudFormation does with the result:
checks the Rules, evaluates the Conditions, drops the resources whose condition is false and
resolves Fn::If / Ref / Fn::FindInMap / Fn::Sub / Fn::Join of parameters (AWS::NoValue removes
the property or list item). What is left is the set of resources one deploy creates, with the
policies as IAM will see them (pseudo parameters and resource attributes stay symbolic, e.g.
{"Fn::GetAtt": ["Function", "Arn"]}).
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The transform fills in AWS::Region for its own use; no AWS call is made.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

NO_VALUE = object()


class RuleFailed(Exception):
    """A template Rule's assertion is false for these parameters (CloudFormation rejects the deploy)."""


class _NoManagedPolicies:
    """The transform asks for managed policy ARNs only for SAM policy names; the template uses none."""

    def load(self) -> dict[str, str]:
        return {}


@functools.cache
def _parsed() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


def source() -> dict[str, Any]:
    """template.yaml as written (a fresh copy)."""
    return copy.deepcopy(_parsed())


def _parameter_values(template: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise KeyError(f"parameter {name} has no default and was not given")
        if "AllowedValues" in spec and str(value) not in [str(v) for v in spec["AllowedValues"]]:
            raise ValueError(f"{name}={value!r} is not one of {spec['AllowedValues']}")
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], str(value)):
            raise ValueError(f"{name}={value!r} does not match {spec['AllowedPattern']}")
        if spec.get("Type") == "CommaDelimitedList":
            value = value if isinstance(value, list) else str(value).split(",")
        values[name] = value
    unknown = set(given) - set(values)
    if unknown:
        raise KeyError(f"unknown parameters: {sorted(unknown)}")
    return values


class _Resolver:
    def __init__(self, template: dict[str, Any], params: dict[str, Any]):
        self.template = template
        self.params = params
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.params:
                    return self.params[arg]
                return node  # a resource or pseudo parameter: symbolic
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.value(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                left, right = (self.value(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::FindInMap":
                mapping, top, second = (self.value(a) for a in arg)
                return self.template["Mappings"][mapping][top][second]
            if key == "Fn::Join":
                separator, items = arg
                items = self.value(items)
                if all(isinstance(i, (str, int)) for i in items):
                    return separator.join(str(i) for i in items)
                return {"Fn::Join": [separator, items]}
            if key == "Fn::Sub" and (
                isinstance(arg, str) or (isinstance(arg, list) and isinstance(arg[0], str))
            ):
                # Fn::Sub "text", or Fn::Sub ["text", {Name: value}]: the map's names, then the
                # parameters; what is left (pseudo parameters, attributes) stays symbolic.
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
                known = {**self.params, **names}
                text = re.sub(
                    r"\$\{([A-Za-z0-9]+)\}",
                    lambda m: str(known[m.group(1)])
                    if m.group(1) in known and isinstance(known[m.group(1)], (str, int))
                    else m.group(0),
                    text,
                )
                return text if "${" not in text else {"Fn::Sub": text}
        resolved = {key: self.value(item) for key, item in node.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}


def _check_rules(template: dict[str, Any], resolver: _Resolver) -> None:
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not resolver.value(rule["RuleCondition"]):
            continue
        for assertion in rule["Assertions"]:
            if not resolver.value(assertion["Assert"]):
                raise RuleFailed(f"{name}: {assertion.get('AssertDescription', '')}")


def effective(given: dict[str, Any]) -> dict[str, Any]:
    """Resources, Outputs and resolved Conditions of one deploy with these parameters."""
    parameters = _parameter_values(source(), given)
    template = copy.deepcopy(source())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            # What `sam deploy` does before the transform runs: CodeUri becomes the uploaded package.
            resource["Properties"]["CodeUri"] = "s3://sam-artifacts/rotation-function.zip"
    translated = transform(template, dict(parameters), _NoManagedPolicies())
    resolver = _Resolver(translated, parameters)
    _check_rules(translated, resolver)
    resources = {}
    for logical_id, resource in translated["Resources"].items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        resources[logical_id] = resolver.value(resource)
    outputs = {}
    for name, output in translated.get("Outputs", {}).items():
        if "Condition" in output and not resolver.condition(output["Condition"]):
            continue
        outputs[name] = resolver.value(output)
    return {"Resources": resources, "Outputs": outputs, "Translated": translated}


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in resources.items() if r["Type"] == kind}


def statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement of every role and role policy, with the logical id it belongs to."""
    found = []
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
        if resource["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
            found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)
