"""The Python comparison for bench/cold-start: what a boto3 Lambda handler equivalent to the
prepare step does, run against the same local Lambda Runtime API as the Rust binaries.

At init it builds the same eleven AWS clients the Rust steps build (one boto3 session), then
serves invocations the way Lambda's Python runtime interface client does: GET .../next, handle,
POST .../response. Its handler does what prepare does for a push nobody watches: one DynamoDB
Query on the service index, then answers "ignored".
"""

import json
import os
import urllib.request

import boto3

session = boto3.session.Session()
CLIENTS = {
    name: session.client(name)
    for name in (
        "ecs",
        "elbv2",
        "route53",
        "dynamodb",
        "ssm",
        "sns",
        "cloudwatch",
        "rds",
        "stepfunctions",
        "sts",
        "secretsmanager",
    )
}
TABLE = os.environ.get("BLUEGREEN_SERVICES_TABLE", "bluegreen-services")
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"


def handler(event):
    repository = event["detail"]["repository-name"]
    found = CLIENTS["dynamodb"].query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "repository#" + repository}},
        ConsistentRead=True,
    )
    if not found["Items"]:
        return {"outcome": "ignored", "reason": "no service watches " + repository}
    return {"outcome": "deployments", "deployments": []}


def main():
    while True:
        with urllib.request.urlopen(API + "/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        body = json.dumps(handler(event)).encode()
        answer = urllib.request.Request(API + "/" + request_id + "/response", data=body, method="POST")
        urllib.request.urlopen(answer).read()


if __name__ == "__main__":
    main()
