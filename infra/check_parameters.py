"""The stack's parameter patterns accept and refuse what the template says they do.

CloudFormation checks a parameter's AllowedPattern when the stack is created or updated, so a
pattern that lets a dangerous value through is only found in an account. Each case here is a
value and whether the pattern must accept it; a pattern too wide (TaskRolePath "/" would let
bluegreen pass any role of the account to ECS tasks) or too narrow fails this check. The
patterns are read from infra/template.yaml (YAML double-quoted strings, unescaped as JSON).
"""

import json
import re
import sys

CASES = {
    "TaskRolePath": [
        ("/ecs-tasks/", True),
        ("/teams/shop/", True),
        ("/", False),  # every role of the account
        ("/*/", False),
        ("/ecs-tasks/*", False),
        ("ecs-tasks/", False),
        ("/ecs tasks/", False),
    ],
    "AutoApproveServices": [
        ("none", True),
        ("*", True),
        ("shop", True),
        ("shop,billing-api", True),
        ("", False),
        ("shop, billing", False),
        ("shop,*", False),
    ],
    "RepositoryPrefix": [
        ("", True),
        ("shop/", True),
        ("Shop/", False),
    ],
}


def pattern_of(template: str, parameter: str) -> str:
    block = re.search(
        rf"^  {parameter}:\n((?:    .*\n|\s*#.*\n)+)", template, flags=re.MULTILINE
    )
    if block is None:
        sys.exit(f"parameter {parameter} not found in the template")
    line = re.search(r'^    AllowedPattern: (".*")$', block.group(1), flags=re.MULTILINE)
    if line is None:
        sys.exit(f"parameter {parameter} has no double-quoted AllowedPattern")
    return json.loads(line.group(1))


def main(path: str) -> None:
    template = open(path, encoding="utf-8").read()
    failures = []
    for parameter, cases in CASES.items():
        pattern = pattern_of(template, parameter)
        wrong = [
            f"{parameter} {pattern!r} {'refuses' if accepted else 'accepts'} {value!r}"
            for value, accepted in cases
            if (re.fullmatch(pattern, value) is not None) != accepted
        ]
        failures.extend(wrong)
        if not wrong:
            print(f"  {parameter}: {len(cases)} values as expected")
    if failures:
        sys.exit("parameter patterns wrong:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main(sys.argv[1])
