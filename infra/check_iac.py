"""Checks docs/iac.md's CloudFormation table against the resource schemas cfn-lint ships: every
`AWS::…` resource type and property the table names must exist (a misspelt or removed property
would tell people to omit something that is not there). Usage: check_iac.py docs/iac.md"""

import re
import sys

from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

ROW = re.compile(r"^\|\s*`(AWS::[A-Za-z0-9:]+)`\s*\|\s*`([A-Za-z0-9]+)`\s*\|")


def main(path):
    rows = [m.groups() for line in open(path, encoding="utf-8") if (m := ROW.match(line))]
    if len(rows) < 5:
        sys.exit(f"{path}: expected the CloudFormation table, found {len(rows)} rows")
    problems = []
    for resource_type, prop in rows:
        try:
            schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type)
        except Exception as exc:  # an unknown type: name it with the reason
            problems.append(f"{resource_type}: no such resource type ({exc})")
            continue
        if prop not in schema.schema.get("properties", {}):
            problems.append(f"{resource_type}: no property {prop}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{len(rows)} CloudFormation properties in {path} exist")


if __name__ == "__main__":
    main(sys.argv[1])
