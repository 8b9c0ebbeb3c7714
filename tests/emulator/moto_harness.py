"""moto, in-process, plus a tiny loopback-only control API for what AWS decides and moto cannot.

Started by the Rust test harness (tests/src/emulator.rs). It binds 127.0.0.1 on a free port,
prints `PORT <n>` on stdout and serves until stdin closes (so it dies with the test process that
started it). A `RESET` line on stdin empties it for the next test (every moto backend, moto's
settings, the harness's own state) and serves on a new port, printed the same way; the old port
refuses whatever the previous test still sends.

The control routes stand in for the parts of AWS that act on their own — the ECS scheduler,
the container runtime, ELB health checks. They never change what moto does for an API call,
except that a task is never advanced by being described (below): only StopTask or the
task-stopped route ends it.

  GET  /_bluegreen/network              default VPC id, two subnet ids, default security group id
  POST /_bluegreen/ecs/task-stopped     {"task_arn", "exit_code" (int|null), "stop_code", "reason"}
  POST /_bluegreen/ecs/rollout          {"cluster", "service", "state", "running", "reason",
                                         "draining" (task definition ARNs still draining)}
  POST /_bluegreen/ecs/list-lag         {"on"}: while on, tasks started are not listed by ListTasks
                                        (eventual consistency); off lists them again
  POST /_bluegreen/ecs/circuit-breaker  {"cluster", "service", "previous", "reason"}: the breaker
                                        rolled the primary back to `previous`
  POST /_bluegreen/elbv2/target-health  {"target_group_arn", "target_id", "state", "reason"}
  POST /_bluegreen/sns/published        {"topic_arn"} -> what was published to the topic
                                        (subject, message, message attributes)
  POST /_bluegreen/autoscaling/run      Application Auto Scaling runs every ECS service's
                                        policies once (clamps desired counts, see below)
  POST /_bluegreen/acm/certificate      {"domain"} -> {"arn"}: a certificate the team already has
                                        for its domain (bluegreen never calls ACM; an HTTPS
                                        listener needs one that exists)

CloudWatch: DescribeAlarms answers composite alarms only when AlarmTypes asks for them, as AWS
does (moto answers both kinds always); PutCompositeAlarm is routed to moto's alarm store.

ELB: a network load balancer's ARN — and so its listeners' — says `net/`, as AWS's does (moto
says `app/` for every type), and CreateRule on an NLB listener is refused, as AWS refuses it
(an NLB has no listener rules; moto adds one).

ECS: CreateService keeps the settings moto drops (health check grace period, execute command,
managed tags, AZ rebalancing, placement, deployment configuration), as AWS does.

ECS: a task has one container per container definition, as AWS reports it (moto: the first
definition's only).

ECR: an image's imagePushedAt keeps its fraction of a second, as AWS's does (moto: whole seconds).

Pages: DescribeAlarms, RDS's DescribeDB{Snapshots,ClusterSnapshots,Clusters} and ECR's
DescribeImages answer one page of AWS's default size and a token for the rest (moto answers
everything at once).

Application Auto Scaling: moto stores scalable targets and policies but never acts on them.
Three things AWS does are modelled: RegisterScalableTarget moves an active service's desired
count into the new [min, max] at once, deleting a policy that does not exist answers
ObjectNotFoundException (moto: ValidationException), and /_bluegreen/autoscaling/run plays a
policy running: a
service below its minimum scales out to it, one above its maximum scales in — unless that
direction is suspended on its scalable target.
"""

import copy
import json
import os

from botocore import xform_name
from datetime import datetime, timezone
import sys
import threading

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.acm.models import acm_backends
from moto.ec2.models import ec2_backends
from moto.ecs import models as ecs_models
from moto.ecs.models import ecs_backends
from moto.ecs import responses as ecs_responses
from moto.core.responses import ActionResult
from moto.ecs.exceptions import InvalidParameterException as EcsInvalidParameter
from moto.elbv2 import models as elbv2_models
from moto.sns.models import sns_backends
from moto.awslambda_simple import models as lambda_simple
from moto.cloudwatch import responses as cloudwatch_responses
from moto.cloudwatch.exceptions import ValidationError as CloudWatchValidationError
from moto.events import responses as events_responses
from moto.rds import responses as rds_responses
from moto.rds import models as rds_models
from moto.ecr import responses as ecr_responses
from moto.ecr import models as ecr_models
from moto.events.models import EventPattern
from moto.moto_api import state_manager
from moto.moto_api._internal.models import moto_api_backend
from moto.core import config as moto_config
from moto.applicationautoscaling import models as aas_models
from moto.core.exceptions import JsonRESTError
from moto.applicationautoscaling.models import applicationautoscaling_backends

ACCOUNT = "123456789012"
REGION = "us-east-1"

# (target group ARN, target id) -> (state, reason); consulted before moto's own answer.
HEALTH_OVERRIDES = {}
_original_create_load_balancer = elbv2_models.ELBv2Backend.create_load_balancer
_original_create_rule = elbv2_models.ELBv2Backend.create_rule


def _create_load_balancer(self, *args, **kwargs):
    balancer = _original_create_load_balancer(self, *args, **kwargs)
    if balancer.type == "network" and ":loadbalancer/app/" in balancer.arn:
        old = balancer.arn
        balancer.arn = old.replace(":loadbalancer/app/", ":loadbalancer/net/")
        self.load_balancers[balancer.arn] = self.load_balancers.pop(old)
        tags = self.tagging_service.list_tags_for_resource(old).get("Tags", [])
        self.tagging_service.delete_all_tags_for_resource(old)
        if tags:
            self.tagging_service.tag_resource(balancer.arn, tags)
    return balancer


def _create_rule(self, listener_arn, *args, **kwargs):
    if ":listener/net/" in listener_arn:
        raise elbv2_models.RESTError(
            "ValidationError", "Listener rules are not supported for Network Load Balancers"
        )
    return _original_create_rule(self, listener_arn, *args, **kwargs)


elbv2_models.ELBv2Backend.create_load_balancer = _create_load_balancer
elbv2_models.ELBv2Backend.create_rule = _create_rule

_original_health_for = elbv2_models.FakeTargetGroup.health_for


def _health_for(self, target, ec2_backend):
    override = HEALTH_OVERRIDES.get((self.arn, target["Id"]))
    if override is None:
        return _original_health_for(self, target, ec2_backend)
    state, reason = override
    port = target.get("Port", self.port)
    return elbv2_models.FakeHealthStatus(
        target["Id"], port, self.health_check_port, state, reason, f"set by test: {reason}"
    )


elbv2_models.FakeTargetGroup.health_for = _health_for


# moto advances an ECS task one state (DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED, exit code
# 0) on every DescribeTasks of it, so a one-off task nobody stops "succeeds" after four looks:
# the outcome would be decided by how often bluegreen polls, not by the test. Freeze the
# progression (manual, after a billion looks; `"times": -1` does not freeze, moto's tick check
# is `tick >= times`), so a task stays RUNNING until StopTask or the control route below stops
# it. BLUEGREEN_HARNESS_TASKS_ADVANCE=1 restores moto's behaviour (only to show what the guard
# test `a_task_nobody_stops_stays_running_however_often_it_is_described` catches).
if os.environ.get("BLUEGREEN_HARNESS_TASKS_ADVANCE") != "1":
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "manual", "times": 1_000_000_000}
    )


# moto copies a container definition's integer cpu/memory into a task's containers, where the
# ECS API (and so the SDK) has strings; without this, every RunTask/DescribeTasks answer fails
# to deserialise. Only the representation changes.
_original_container_init = ecs_models.Container.__init__


def _container_init(self, task_def):
    _original_container_init(self, task_def)
    self.cpu = None if self.cpu is None else str(self.cpu)
    self.memory = None if self.memory is None else str(self.memory)


ecs_models.Container.__init__ = _container_init


# moto gives a task one container, the first definition's; ECS reports one per container
# definition, each with its own name, image and exit code. A task of a proxy + app definition
# would otherwise show only the proxy, and a migration's exit code would be read from the
# wrong container (or not found at all).
_original_task_init = ecs_models.Task.__init__


def _task_init(self, cluster, task_definition, *args, **kwargs):
    _original_task_init(self, cluster, task_definition, *args, **kwargs)
    containers = []
    for definition in task_definition.container_definitions:
        container = ecs_models.Container(task_definition)
        container.image = definition.get("image")
        container.name = definition.get("name")
        container.command = definition.get("command")
        container.environment = definition.get("environment")
        container.cpu = None if definition.get("cpu") is None else str(definition.get("cpu"))
        container.memory = (
            None if definition.get("memory") is None else str(definition.get("memory"))
        )
        containers.append(container)
    self.containers = containers


ecs_models.Task.__init__ = _task_init


# moto's "simple" Lambda (used with its Step Functions interpreter) returns queued results as
# payloads but cannot fail. Real Lambda reports a function error as a payload
# {"errorType", "errorMessage"} plus the X-Amz-Function-Error header; add the header when a
# queued result has that shape, so Retry/Catch on error names can be exercised.
_original_simple_invoke = lambda_simple.LambdaSimpleBackend.invoke


def _simple_invoke(self, function_name, qualifier, body, headers, response_headers):
    result = _original_simple_invoke(self, function_name, qualifier, body, headers, response_headers)
    try:
        payload = json.loads(result)
    except (TypeError, ValueError):
        return result
    if isinstance(payload, dict) and {"errorType", "errorMessage"} <= payload.keys():
        response_headers["X-Amz-Function-Error"] = "Unhandled"
    return result


lambda_simple.LambdaSimpleBackend.invoke = _simple_invoke


# moto 5.2.1 answers TestEventPattern with an empty body (the operation is a stub), while its
# own rule matching (EventPattern, what PutEvents uses to pick rules) is complete. Answer the
# API call with that matcher, so the stack's rule pattern is tested through the real
# EventBridge operation and moto's real matcher.
def _test_event_pattern(self):
    pattern = EventPattern.load(self._get_param("EventPattern"))
    event = json.loads(self._get_param("Event"))
    return json.dumps({"Result": pattern.matches_event(event)}), self.response_headers


events_responses.EventsHandler.test_event_pattern = _test_event_pattern


def _clamp(target, scale_out=True, scale_in=True):
    """Moves the ECS service of `target` into its [min, max] in the allowed directions."""
    _, cluster, name = target.resource_id.split("/")
    service = ecs_backends[ACCOUNT][REGION].services.get(f"{cluster}:{name}")
    if service is None:
        return
    desired = service.desired_count
    if scale_out and target.min_capacity is not None and desired < target.min_capacity:
        service.desired_count = target.min_capacity
    elif scale_in and target.max_capacity is not None and desired > target.max_capacity:
        service.desired_count = target.max_capacity


_original_register = aas_models.ApplicationAutoscalingBackend.register_scalable_target


def _register_scalable_target(self, namespace, r_id, dimension, *args, **kwargs):
    target = _original_register(self, namespace, r_id, dimension, *args, **kwargs)
    if namespace == "ecs":
        _clamp(target)
    return target


aas_models.ApplicationAutoscalingBackend.register_scalable_target = _register_scalable_target


class _ObjectNotFound(JsonRESTError):
    def __init__(self, message):
        super().__init__("ObjectNotFoundException", message)


_original_delete_policy = aas_models.ApplicationAutoscalingBackend.delete_scaling_policy


def _delete_scaling_policy(self, policy_name, *args, **kwargs):
    """AWS answers ObjectNotFoundException for a policy that does not exist; moto answers
    ValidationException, which a retried delete could not tell from a bad request."""
    try:
        return _original_delete_policy(self, policy_name, *args, **kwargs)
    except aas_models.AWSValidationException as exc:
        if "No scaling policy found" in exc.message:
            raise _ObjectNotFound(exc.message) from exc
        raise


aas_models.ApplicationAutoscalingBackend.delete_scaling_policy = _delete_scaling_policy


def autoscaling_run(_body):
    """Application Auto Scaling: every ECS scalable target with a policy is acted on once."""
    backend = applicationautoscaling_backends[ACCOUNT][REGION]
    acted = []
    for target in backend.targets.get("ecs:service:DesiredCount", {}).values():
        if not any(p.resource_id == target.resource_id for p in backend.policies.values()):
            continue
        suspended = target.suspended_state or {}
        _clamp(
            target,
            scale_out=not suspended.get("DynamicScalingOutSuspended", False),
            scale_in=not suspended.get("DynamicScalingInSuspended", False),
        )
        acted.append(target.resource_id)
    return {"acted_on": acted}


_original_describe_alarms = cloudwatch_responses.CloudWatchResponse.describe_alarms


def _describe_alarms(self):
    """AWS returns composite alarms only when AlarmTypes asks for them ("If you omit this
    parameter, only metric alarms are returned"); moto returns both always. AWS takes at most
    100 AlarmNames; moto any number."""
    if len(self._get_param("AlarmNames", []) or []) > 100:
        # "AlarmNames: Maximum number of 100 items" (DescribeAlarms API reference).
        raise CloudWatchValidationError("AlarmNames: at most 100 items")
    result = _original_describe_alarms(self)
    types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
    if "CompositeAlarm" not in types:
        result.result["CompositeAlarms"] = []
    if "MetricAlarm" not in types:
        result.result["MetricAlarms"] = []
    return result


cloudwatch_responses.CloudWatchResponse.describe_alarms = _describe_alarms
# PutCompositeAlarm is not routed by moto 5.2.1 (HTTP 500); its put_metric_alarm already stores
# an AlarmRule as a composite alarm.
cloudwatch_responses.CloudWatchResponse.put_composite_alarm = (
    cloudwatch_responses.CloudWatchResponse.put_metric_alarm
)


def _paged(responses_class, method, items, size_param, default_size, token_in, token_out):
    """Pages a list answer as AWS does: at most `size_param` (or AWS's default page size)
    items, and a token for the rest. moto answers these calls in one page whatever their size,
    so code that read only the first page passed every test (issue 22). The token is the
    offset; `items` are the answer's lists, paged together in order."""
    original = getattr(responses_class, method)

    def paged(self):
        result = original(self)
        body = result.result
        size = int(self._get_param(size_param) or default_size)
        start = int(self._get_param(token_in) or 0)
        pool = [(key, item) for key in items for item in body.get(key) or []]
        page = pool[start : start + size]
        for key in items:
            body[key] = [item for k, item in page if k == key]
        body[token_out] = str(start + size) if start + size < len(pool) else None
        return result

    setattr(responses_class, method, paged)


# RestoreDBClusterToPointInTime: AWS gives the restored cluster the default security group and
# the default cluster parameter group unless they are named, and no Serverless v2 scaling (a
# db.serverless writer cannot be added without it). moto drops the security groups and the
# parameter group but copies the scaling, so a clone without it looked fine.
_original_restore_cluster = rds_models.RDSBackend.restore_db_cluster_to_point_in_time


def _restore_cluster(self, *args, **kwargs):
    cluster = _original_restore_cluster(self, *args, **kwargs)
    if not kwargs.get("serverless_v2_scaling_configuration"):
        cluster.serverless_v2_scaling_configuration = None
    return cluster


rds_models.RDSBackend.restore_db_cluster_to_point_in_time = _restore_cluster


# Page sizes are AWS's defaults (each API reference's MaxRecords/maxResults). moto pages
# DescribeDBInstances itself (100 a page); paging it again here would lose its later pages.
_paged(cloudwatch_responses.CloudWatchResponse, "describe_alarms",
       ["MetricAlarms", "CompositeAlarms"], "MaxRecords", 50, "NextToken", "NextToken")
for _method, _key in [
    ("describe_db_snapshots", "DBSnapshots"),
    ("describe_db_cluster_snapshots", "DBClusterSnapshots"),
    ("describe_db_clusters", "DBClusters"),
]:
    _paged(rds_responses.RDSResponse, _method, [_key], "MaxRecords", 100, "Marker", "Marker")
_paged(ecr_responses.ECRResponse, "describe_images", ["imageDetails"], "maxResults", 100,
       "nextToken", "nextToken")

_original_image_init = ecr_models.Image.__init__


def _image_init(self, *args, **kwargs):
    """ECR's imagePushedAt has sub-second precision; moto truncates it to the second, so two
    pushes in one second looked equally new and "the newest image" was decided by digest."""
    _original_image_init(self, *args, **kwargs)
    self.image_pushed_at = datetime.now(timezone.utc).timestamp()


ecr_models.Image.__init__ = _image_init


def _find_task(arn):
    for tasks in ecs_backends[ACCOUNT][REGION].tasks.values():
        for task_arn, task in tasks.items():
            if task_arn == arn or task.task_arn == arn:
                return task
    raise KeyError(f"no task {arn}")


def network(_body):
    ec2 = ec2_backends[ACCOUNT][REGION]
    vpc = next(v for v in ec2.vpcs.values() if v.is_default)
    subnets = sorted(
        (s for az in ec2.subnets.values() for s in az.values() if s.vpc_id == vpc.id),
        key=lambda s: s.availability_zone,
    )
    group = next(
        g for g in ec2.describe_security_groups() if g.vpc_id == vpc.id and g.name == "default"
    )
    return {"vpc_id": vpc.id, "subnet_ids": [s.id for s in subnets[:2]], "security_group_id": group.id}


def task_stopped(body):
    """The container runtime: the task's essential container exited (or never started)."""
    task = _find_task(body["task_arn"])
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stop_code = body.get("stop_code", "EssentialContainerExited")
    task.stopped_reason = body.get("reason", "Essential container in task exited")
    for container in task.containers:
        container.last_status = "STOPPED"
        container.exitCode = body.get("exit_code")
    return {"task_arn": task.task_arn}


def rollout(body):
    """The ECS scheduler: the service's primary deployment reached a rollout state."""
    backend = ecs_backends[ACCOUNT][REGION]
    service = backend.services[f"{body['cluster']}:{body['service']}"]
    running = int(body.get("running", service.desired_count))
    service.running_count = running
    service.pending_count = max(service.desired_count - running, 0)
    primary = dict(service.deployments[0]) if service.deployments else {}
    primary.update(
        {
            "status": "PRIMARY",
            "taskDefinition": service.task_definition,
            "desiredCount": service.desired_count,
            "runningCount": running,
            "pendingCount": service.pending_count,
            "rolloutState": body["state"],
            "rolloutStateReason": body.get("reason", f"set by test: {body['state']}"),
        }
    )
    # Older deployments ECS is still draining (their tasks not yet replaced): ACTIVE.
    draining = [
        {
            "id": f"ecs-svc/draining-{i}",
            "status": "ACTIVE",
            "taskDefinition": td,
            "desiredCount": 0,
            "runningCount": running,
            "pendingCount": 0,
            "rolloutState": "COMPLETED",
        }
        for i, td in enumerate(body.get("draining", []))
    ]
    service.deployments = [primary] + draining
    return {"service": service.arn}


def circuit_breaker(body):
    """ECS's deployment circuit breaker gave up on the primary deployment and rolls back: the
    service is set back to `previous` (the last completed revision) in a new PRIMARY, and the
    failed deployment drains as ACTIVE / FAILED."""
    backend = ecs_backends[ACCOUNT][REGION]
    service = backend.services[f"{body['cluster']}:{body['service']}"]
    failed_td = service.task_definition
    service.task_definition = body["previous"]
    service.deployments = [
        {
            "id": "ecs-svc/rollback",
            "status": "PRIMARY",
            "taskDefinition": body["previous"],
            "desiredCount": service.desired_count,
            "runningCount": 0,
            "pendingCount": service.desired_count,
            "rolloutState": "IN_PROGRESS",
            "rolloutStateReason": "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/previous",
        },
        {
            "id": "ecs-svc/failed",
            "status": "ACTIVE",
            "taskDefinition": failed_td,
            "desiredCount": 0,
            "runningCount": 0,
            "pendingCount": 0,
            "rolloutState": "FAILED",
            "rolloutStateReason": body.get("reason", "ECS deployment circuit breaker: tasks failed to start."),
        },
    ]
    return {"service": service.arn}


def target_health(body):
    """ELB health checks: a target's health as the load balancer would report it."""
    HEALTH_OVERRIDES[(body["target_group_arn"], body["target_id"])] = (
        body["state"],
        body.get("reason", "Target.ResponseCodeMismatch"),
    )
    return {}


def certificate(body):
    """The team's certificate for its domain, as ACM holds it."""
    arn = acm_backends[ACCOUNT][REGION].request_certificate(
        domain_name=body["domain"], idempotency_token=None, subject_alt_names=[], tags=[]
    )
    return {"arn": arn}


def published(body):
    """What was published to a topic: [{"subject", "message", "attributes"}], oldest first;
    attributes maps each message attribute's name to its string value."""
    topic = sns_backends[ACCOUNT][REGION].topics[body["topic_arn"]]
    return [
        {
            "subject": n[2],
            "message": n[1],
            "attributes": {k: v.get("Value") for k, v in (n[3] or {}).items()},
        }
        for n in topic.sent_notifications
    ]


# ECS: capacity providers (moto ignores them): UpdateService with a strategy clears the launch
# type, RunTask refuses both at once and names the provider each task runs on.
# RunTask honours its clientToken as AWS does (the same token answers the tasks it
# started; moto starts new ones), and ListTasks can lag behind RunTask (AWS's ECS reads are
# eventually consistent: a task just started may not be listed yet).
RUN_TASK_TOKENS = {}
LIST_LAG = {"on": False}
UNLISTED = set()
_original_run_task = ecs_responses.EC2ContainerServiceResponse.run_task


def _placed_on(strategy):
    """The provider a single task of `strategy` lands on: the one with a base first (ECS
    places the base before it weighs), else the heaviest."""
    based = [item for item in strategy if int(item.get("base", 0)) > 0]
    if based:
        return based[0]["capacityProvider"]
    return max(strategy, key=lambda item: int(item.get("weight", 0)))["capacityProvider"]


def _run_task(self):
    strategy = self._get_param("capacityProviderStrategy") or []
    if strategy and self._get_param("launchType"):
        # "Specifying both a launchType and capacityProviderStrategy is not supported."
        raise EcsInvalidParameter("launchType and capacityProviderStrategy are exclusive")
    token = self._get_param("clientToken")
    key = (self._get_param("cluster", "default"), token)
    if token and key in RUN_TASK_TOKENS:
        tasks = [t for t in (_find_task(arn) for arn in RUN_TASK_TOKENS[key]) if t is not None]
        return ActionResult({"tasks": tasks, "failures": []})
    if strategy and all(i["capacityProvider"].startswith("FARGATE") for i in strategy):
        # moto runs tasks without container instances only for the FARGATE launch type.
        if self.automated_parameter_parsing:
            self.params["launchType"] = "FARGATE"
        else:
            body = json.loads(self.body)
            body["launchType"] = "FARGATE"
            self.body = json.dumps(body)
    result = _original_run_task(self)
    for task in result.result["tasks"]:
        # ECS names the provider a task runs on (moto ignores capacity providers).
        task.capacity_provider_name = _placed_on(strategy) if strategy else None
    arns = [task.task_arn for task in result.result["tasks"]]
    if token:
        RUN_TASK_TOKENS[key] = arns
    if LIST_LAG["on"]:
        UNLISTED.update(arns)
    return result


ecs_responses.EC2ContainerServiceResponse.run_task = _run_task
_original_register_task_definition = ecs_responses.EC2ContainerServiceResponse.register_task_definition


def _register_task_definition(self):
    """Keeps `enableFaultInjection`, which moto drops (AWS stores and returns it)."""
    result = _original_register_task_definition(self)
    result.result["taskDefinition"].enable_fault_injection = self._get_param("enableFaultInjection")
    return result


ecs_responses.EC2ContainerServiceResponse.register_task_definition = _register_task_definition
_original_create_service = ecs_responses.EC2ContainerServiceResponse.create_service

# CreateService settings moto accepts but drops, which AWS stores and DescribeServices returns:
# a copy of a service (adopt) that lost one would pass every test and differ in AWS.
KEPT_SERVICE_SETTINGS = [
    "healthCheckGracePeriodSeconds",
    "enableExecuteCommand",
    "enableECSManagedTags",
    "availabilityZoneRebalancing",
    "placementConstraints",
    "placementStrategy",
    "deploymentConfiguration",
]


def _create_service(self):
    result = _original_create_service(self)
    service = result.result["service"]
    for name in KEPT_SERVICE_SETTINGS:
        value = self._get_param(name)
        if value is not None:
            setattr(service, xform_name(name), value)
    # AWS shows Service Connect on the service's deployments.
    connect = self._get_param("serviceConnectConfiguration")
    if connect is not None:
        for deployment in service.deployments:
            deployment["serviceConnectConfiguration"] = connect
    return result


ecs_responses.EC2ContainerServiceResponse.create_service = _create_service
_original_update_service = ecs_models.EC2ContainerServiceBackend.update_service


def _update_service(self, properties):
    """A service given a capacity provider strategy has no launch type any more, as in AWS
    (moto keeps both, and stores the strategy only because it stores every property)."""
    moving = bool(properties.get("capacity_provider_strategy"))
    service = _original_update_service(self, properties)
    if moving:
        service.launch_type = None
    return service


ecs_models.EC2ContainerServiceBackend.update_service = _update_service
_original_list_tasks = ecs_models.EC2ContainerServiceBackend.list_tasks


def _list_tasks(self, *args, **kwargs):
    return [t for t in _original_list_tasks(self, *args, **kwargs) if t.task_arn not in UNLISTED]


ecs_models.EC2ContainerServiceBackend.list_tasks = _list_tasks


def list_lag(body):
    """While on, tasks started are left out of ListTasks; turning it off lists them all."""
    LIST_LAG["on"] = bool(body["on"])
    if not LIST_LAG["on"]:
        UNLISTED.clear()
    return {"unlisted": len(UNLISTED)}


ROUTES = {
    ("POST", "/_bluegreen/ecs/list-lag"): list_lag,
    ("POST", "/_bluegreen/sns/published"): published,
    ("GET", "/_bluegreen/network"): network,
    ("POST", "/_bluegreen/ecs/task-stopped"): task_stopped,
    ("POST", "/_bluegreen/ecs/rollout"): rollout,
    ("POST", "/_bluegreen/ecs/circuit-breaker"): circuit_breaker,
    ("POST", "/_bluegreen/elbv2/target-health"): target_health,
    ("POST", "/_bluegreen/autoscaling/run"): autoscaling_run,
    ("POST", "/_bluegreen/acm/certificate"): certificate,
}


# DynamoDB applies a conditional write atomically; moto checks and writes in two steps on a
# threaded server, so two concurrent writes can both pass the check. Serialising DynamoDB calls
# restores the guarantee the lock and the approval decision rely on.
DYNAMODB_LOCK = threading.Lock()

# moto's own settings (/moto-api/config) as they were at start, put back by a reset.
_DEFAULT_MOTO_CONFIG = copy.deepcopy(moto_config.default_user_config)


class Generations:
    """Which server generation may touch moto. A reset starts a new generation on a new port
    and waits for the requests already inside moto to leave; a request the old server accepted
    but had not started (the server answers `Connection: close`, so each call is a new
    connection, refused once the old port closes) is refused before it touches moto. Nothing
    the previous test still sends lands in the next test's world."""

    def __init__(self):
        self._changed = threading.Condition()
        self.current = 0
        self._inside = 0

    def enter(self, generation):
        with self._changed:
            if generation != self.current:
                return False
            self._inside += 1
            return True

    def leave(self):
        with self._changed:
            self._inside -= 1
            self._changed.notify_all()

    def advance(self):
        with self._changed:
            self.current += 1
            if not self._changed.wait_for(lambda: self._inside == 0, timeout=30):
                # A request of the previous test hangs inside moto: this emulator cannot be
                # emptied safely. Exiting closes stdout, and the test harness starts a new one.
                os._exit(3)
            return self.current


GENERATIONS = Generations()


def _app_for(generation):
    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if not GENERATIONS.enter(generation):
            retired = Response("this emulator was reset for another test", 503)
            return retired(environ, start_response)
        try:
            return list(_answer(moto_app, environ, start_response))
        finally:
            GENERATIONS.leave()

    return app


def _answer(moto_app, environ, start_response):
    handler = ROUTES.get((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
    if handler is None:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with DYNAMODB_LOCK:
                return list(moto_app(environ, start_response))
        return moto_app(environ, start_response)
    request = Request(environ)
    try:
        body = json.loads(request.get_data() or b"{}")
        response = Response(json.dumps(handler(body)), 200, mimetype="application/json")
    except Exception as exc:  # the test sees the reason in its assertion message
        response = Response(json.dumps({"error": repr(exc)}), 400, mimetype="application/json")
    return response(environ, start_response)


def _serve(generation, port=0):
    """Serves `generation` on `port` (0: a free one) in a thread; prints `PORT <n>`."""
    server = make_server("127.0.0.1", port, _app_for(generation), threaded=True)
    # moto's Step Functions interpreter calls back to itself on MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.server_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_port}", flush=True)
    return server


def _reset(server):
    """Back to a just-started emulator for the next test (the test harness keeps warm ones:
    starting Python and importing moto costs ~1.6 s of CPU per test). Retires the old port,
    empties every moto backend and the harness's own state, and serves on a new port."""
    generation = GENERATIONS.advance()
    moto_api_backend.reset()
    moto_config.default_user_config.clear()
    moto_config.default_user_config.update(copy.deepcopy(_DEFAULT_MOTO_CONFIG))
    HEALTH_OVERRIDES.clear()
    RUN_TASK_TOKENS.clear()
    UNLISTED.clear()
    LIST_LAG["on"] = False
    serving = _serve(generation)
    # The old server already refuses everything; stopping its loop takes up to its poll
    # interval (0.5 s), which the next test need not wait for.
    threading.Thread(target=_retire, args=(server,), daemon=True).start()
    return serving


def _retire(server):
    server.shutdown()
    server.server_close()


def main():
    # `bluegreen local up` asks for a port (BLUEGREEN_HARNESS_PORT) and a server that outlives
    # it (BLUEGREEN_HARNESS_DETACHED: until `bluegreen local down` ends the process).
    server = _serve(GENERATIONS.current, int(os.environ.get("BLUEGREEN_HARNESS_PORT", "0")))
    if os.environ.get("BLUEGREEN_HARNESS_DETACHED"):
        threading.Event().wait()
    # One command per stdin line: RESET (see `_reset`). Serve until the parent closes our
    # stdin (it exits or drops the emulator).
    for line in sys.stdin:
        if line.strip() == "RESET":
            server = _reset(server)
    server.shutdown()


if __name__ == "__main__":
    main()
