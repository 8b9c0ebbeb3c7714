"""Prints the IAM actions each role of infra/template.yaml holds (inline and managed policies),
one role a paragraph, with the resource (or condition) each action is limited to, and which
functions or state machines use the role. Reads the template with cfn-lint's decoder, which
understands the intrinsic-function tags. Usage: iam_report.py <template>"""

import sys

from cfnlint.decode import decode


def text(value):
    """A readable form of a resource or condition value with intrinsic functions."""
    if isinstance(value, list):
        return ", ".join(text(v) for v in value)
    if isinstance(value, dict):
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            sub = sub if isinstance(sub, str) else sub[0]
            # Partition, region and account add nothing to a reader of one stack.
            return sub.replace("arn:${AWS::Partition}:", "").replace(
                ":${AWS::Region}:${AWS::AccountId}:", "::"
            )
        if "Ref" in value:
            return "{" + value["Ref"] + "}"
        if "Fn::GetAtt" in value:
            attr = value["Fn::GetAtt"]
            return "{" + (attr if isinstance(attr, str) else ".".join(attr)) + "}"
        return ", ".join(f"{k}={text(v)}" for k, v in value.items())
    return str(value)


def statements(document):
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def main(path):
    template, matches = decode(path)
    if matches:
        sys.exit(f"cannot read {path}: {matches}")
    resources = template["Resources"]
    users = {}
    for name, resource in resources.items():
        role = resource.get("Properties", {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            target = role["Fn::GetAtt"]
            target = target[0] if isinstance(target, list) else target.split(".")[0]
            users.setdefault(target, []).append(name)
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        properties = resource["Properties"]
        granted = []
        for policy in properties.get("ManagedPolicyArns", []):
            # A policy attached under a condition (`!If [Cond, !Ref P, !Ref AWS::NoValue]`) is
            # reported like the others, with its condition named.
            when = ""
            if "Fn::If" in policy:
                condition, policy, _ = policy["Fn::If"]
                when = f"  (when {condition})"
            managed = resources[policy["Ref"]]["Properties"]["PolicyDocument"]
            for statement in statements(managed):
                if when:
                    statement = {**statement, "Resource": statement["Resource"]}
                    statement["_when"] = when
                granted.append(statement)
        for policy in properties.get("Policies", []):
            granted += statements(policy["PolicyDocument"])
        print(f"{name} (used by {', '.join(sorted(users.get(name, []))) or 'nobody'})")
        for statement in granted:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            limit = text(statement["Resource"])
            if "Condition" in statement:
                limit += f"  when {text(statement['Condition'])}"
            limit += statement.get("_when", "")
            print(f"  {', '.join(actions)}\n      on {limit}")
        print()


if __name__ == "__main__":
    main(sys.argv[1])
