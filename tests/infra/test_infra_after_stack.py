"""The after stack, StreamQuality-after-<stage>: resources, IAM scope, scaling, what it shares with the
before, and its LocalStack variant, read from synthesized templates (aws_cdk.assertions).

Sizes are written out by hand from a fixed calibration, tests/infra/data/calibration-seed.json (720p:
0.108 CPU-s per stream-second, whole tasks of 4 and 8 streams peaking at most at 1,750 and 3,400 MiB;
360p: 0.041 and 650 MiB for 2 streams; given with the `after_calibration` context), and monolith/sizing.py
(50% headroom on both, memory in 128 MiB steps).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import synth  # noqa: F401  (sets the jsii environment variables before aws_cdk loads)

from infra.after_config import AfterConfig, after_stack_name, instance_capacity

BEFORE, AFTER = "StreamQuality-dev", after_stack_name("dev")
SEED = str(Path(__file__).resolve().parent / "data" / "calibration-seed.json")
TASK_ROLE = "MonitorServiceQueueProcessingTaskDefTaskRole"


@dataclass
class Synthesized:
    outdir: Path
    before: dict[str, Any]
    after: dict[str, Any]
    assembly: Any
    stacks: Any

    def template(self) -> Any:
        from aws_cdk.assertions import Template

        return Template.from_json(self.after)


def synth_both(context: dict[str, Any] | None = None) -> Synthesized:
    from app import build_stacks

    stacks = build_stacks({"aws:cdk:bundling-stacks": [], "after_calibration": SEED, **(context or {})})
    assembly = stacks.app.synth()
    outdir = Path(assembly.directory)
    read = lambda name: json.loads((outdir / f"{name}.template.json").read_text())  # noqa: E731
    return Synthesized(outdir, read(stacks.before.stack_name), read(stacks.after.stack_name), assembly,
                       stacks)


@pytest.fixture(scope="module")
def default() -> Synthesized:
    return synth_both()


@pytest.fixture(scope="module")
def graviton() -> Synthesized:
    return synth_both({"after_instance_type": "c7g.2xlarge", "after_concurrency": "8",
                       "after_detectors": "freeze,av_sync", "after_min_tasks": "0", "after_max_tasks": "7"})


@pytest.fixture(scope="module")
def localstack() -> Synthesized:
    return synth_both({"localstack": "true"})


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = of_type(template, kind).values()
    return dict(found["Properties"])


def container(template: dict[str, Any]) -> dict[str, Any]:
    (definition,) = one(template, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]
    return dict(definition)


def env(template: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container(template)["Environment"]}


def queue_ids(template: dict[str, Any]) -> tuple[str, str]:
    """(job queue, dead-letter queue) logical ids."""
    queues = of_type(template, "AWS::SQS::Queue")
    (jobs,) = [k for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    (dlq,) = [k for k in queues if k != jobs]
    return jobs, dlq


def statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    out = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def export_of(before: dict[str, Any], logical_id: str, attribute: str | None = None) -> str:
    """The export name under which the before publishes Ref/GetAtt of `logical_id`."""
    wanted = {"Ref": logical_id} if attribute is None else {"Fn::GetAtt": [logical_id, attribute]}
    (name,) = [o["Export"]["Name"] for o in before["Outputs"].values()
               if o.get("Export") and o["Value"] == wanted]
    return str(name)


def before_id(before: dict[str, Any], kind: str, part: str) -> str:
    (found,) = [k for k in of_type(before, kind) if part in k]
    return found


# --- sizing and configuration -------------------------------------------------------------------------


def test_task_size_is_the_calibrated_cpu_and_memory_times_concurrency(default: Synthesized,
                                                                      graviton: Synthesized) -> None:
    # 720p × 4: 0.108 × 4 × 1.5 × 1024 = 663.6 → 664 units; the task's peak 1750 × 1.5 = 2625 → 2688 MiB
    # (×128)
    assert (container(default.after)["Cpu"], container(default.after)["Memory"]) == (664, 2688)
    # 720p × 8: 1327.1 → 1328 units; 3400 × 1.5 = 5100 → 5120 MiB
    assert (container(graviton.after)["Cpu"], container(graviton.after)["Memory"]) == (1328, 5120)
    # 360p × 2: 0.041 × 2 × 1.5 × 1024 = 126 → the 128-unit floor; 650 × 1.5 = 975 → 1024 MiB
    size = AfterConfig(resolution="360p", concurrency=2, calibration_path=SEED).task_size
    assert (size.cpu_units, size.memory_mib) == (128, 1024)


def test_instance_capacity_and_packing() -> None:
    assert instance_capacity("c6i.2xlarge") == instance_capacity("c6i.2xlarge")
    c6i, c7g, m7g = (instance_capacity(t) for t in ("c6i.2xlarge", "c7g.2xlarge", "m7g.xlarge"))
    assert (c6i.vcpus, c6i.memory_mib, c6i.arm64) == (8, 16384, False)
    assert (c7g.vcpus, c7g.memory_mib, c7g.arm64) == (8, 16384, True)
    assert (m7g.vcpus, m7g.memory_mib, m7g.arm64) == (4, 16384, True)
    # Default task (664 units, 2688 MiB) on c6i.2xlarge: 8192 // 664 = 12 by CPU, 14745 // 2688 = 5 by memory
    config = AfterConfig(calibration_path=SEED)
    assert (config.tasks_per_instance, config.memory_bound, config.max_instances) == (5, True, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"instance_type": "c6i.large", "concurrency": 8}, "needs 1328 CPU units and 5120 MiB; c6i.large offers"),
    ({"instance_type": "t3.micro"}, "after_instance_type must be a c, m or r instance"),
    ({"instance_type": "c6i.huge"}, "after_instance_type must be"),
    ({"concurrency": 0}, "after_concurrency must be at least 1"),
    ({"detectors": ("freeze", "ghosts")}, "after_detectors must be a non-empty subset"),
    ({"detectors": ()}, "after_detectors must be a non-empty subset"),
    ({"min_tasks": 3, "max_tasks": 2}, "after_min_tasks <= after_max_tasks"),
    ({"network": "vpn"}, "after_network must be one of public, nat, endpoints"),
    ({"resolution": "4k"}, "no cpu_s_per_stream_second measured for '4k'"),
    # A concurrency whose whole task was not measured is not guessed at
    ({"concurrency": 3}, "no task of 3 streams measured at 720p"),
])
def test_bad_after_settings_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        AfterConfig(**{"calibration_path": SEED, **kwargs})


def test_cdk_synth_with_a_refused_context_value_prints_one_error_line(tmp_path: Path) -> None:
    # Given the app run as `cdk synth -c after_network=vpn` runs it (context in CDK_CONTEXT_JSON)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "app.py"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CDK_CONTEXT_JSON": json.dumps({"after_network": "vpn"}),
                               "CDK_OUTDIR": str(tmp_path)})
    # Then it exits 2 with the config's reason, no traceback
    assert done.returncode == 2, done.stderr
    assert "error: after_network must be one of public, nat, endpoints, got 'vpn'" in done.stderr
    assert "Traceback" not in done.stderr


# --- compute ------------------------------------------------------------------------------------------


def test_ecs_cluster_on_ec2_with_an_asg_capacity_provider(default: Synthesized) -> None:
    template = default.template()
    template.resource_count_is("AWS::ECS::Cluster", 1)
    template.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 1)
    template.has_resource_properties("AWS::ECS::TaskDefinition", {
        "RequiresCompatibilities": ["EC2"], "NetworkMode": "bridge"})
    provider = one(default.after, "AWS::ECS::CapacityProvider")["AutoScalingGroupProvider"]
    (asg_id,) = of_type(default.after, "AWS::AutoScaling::AutoScalingGroup")
    # Then ECS scales the group (tasks that cannot be placed add instances) and drains before removing one
    assert provider["AutoScalingGroupArn"] == {"Ref": asg_id}
    assert provider["ManagedScaling"] == {"Status": "ENABLED", "TargetCapacity": 100}
    # A sandbox stage (dev) must be destroyable: no managed termination protection (aws-cdk#18179)
    assert (provider["ManagedTerminationProtection"], provider["ManagedDraining"]) == ("DISABLED", "ENABLED")
    asg = one(default.after, "AWS::AutoScaling::AutoScalingGroup")
    assert (asg["MinSize"], asg["MaxSize"], asg.get("NewInstancesProtectedFromScaleIn", False)) == (
        "0", "2", False)
    service = one(default.after, "AWS::ECS::Service")
    (provider_id,) = of_type(default.after, "AWS::ECS::CapacityProvider")
    assert service["CapacityProviderStrategy"] == [{"CapacityProvider": {"Ref": provider_id}, "Weight": 1}]
    assert service["PlacementStrategies"] == [{"Field": "MEMORY", "Type": "binpack"}]  # memory binds first
    assert "DesiredCount" not in service  # a deployment never resets what scaling has set
    breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
    assert breaker == {"Enable": True, "Rollback": True}


def test_instance_type_and_architecture_come_from_context(default: Synthesized,
                                                          graviton: Synthesized) -> None:
    for synthesized, instance_type, ami in ((default, "c6i.2xlarge", "amazon-linux-2023/recommended"),
                                            (graviton, "c7g.2xlarge", "amazon-linux-2023/arm64/recommended")):
        template = one(synthesized.after, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
        assert template["InstanceType"] == instance_type
        (parameter,) = [p for p in synthesized.after["Parameters"].values()
                        if p["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"]
        assert parameter["Default"] == f"/aws/service/ecs/optimized-ami/{ami}/image_id"
        # IMDSv2 only, encrypted root volume
        assert template["MetadataOptions"]["HttpTokens"] == "required"
        assert template["MetadataOptions"].get("HttpPutResponseHopLimit", 1) == 1  # tasks can't reach IMDS
        assert template["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    # And the image is built for the instances' architecture
    assets = json.loads((graviton.outdir / f"{AFTER}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["platform"] == "linux/arm64"


def test_container_runs_the_dockerfile_command_with_the_services_settings(default: Synthesized,
                                                                           graviton: Synthesized) -> None:
    definition = container(default.after)
    assert "Command" not in definition and "EntryPoint" not in definition  # the Dockerfile's CMD
    assert definition["StopTimeout"] == 120  # SIGTERM: the service finishes its second, releases its jobs
    jobs, _ = queue_ids(default.after)
    variables = env(default.after)
    assert variables["MONITOR_JOB_QUEUE_URL"] == {"Ref": jobs}
    assert variables["MONITOR_CONCURRENCY"] == "4"
    assert variables["MONITOR_DETECTORS"] == "freeze,block_corruption,av_sync"
    results = before_id(default.before, "AWS::S3::Bucket", "StorageResults")
    source = before_id(default.before, "AWS::S3::Bucket", "StorageSource")
    topic = before_id(default.before, "AWS::SNS::Topic", "Defects")
    assert variables["MONITOR_RESULTS_BUCKET"] == {"Fn::ImportValue": export_of(default.before, results)}
    assert variables["MONITOR_SOURCE_BUCKETS"] == {"Fn::ImportValue": export_of(default.before, source)}
    assert variables["MONITOR_TOPIC_ARN"] == {"Fn::ImportValue": export_of(default.before, topic)}
    # The detector subset and concurrency of this copy come from context
    assert (env(graviton.after)["MONITOR_DETECTORS"], env(graviton.after)["MONITOR_CONCURRENCY"]) == (
        "freeze,av_sync", "8")


# --- queue and scaling --------------------------------------------------------------------------------


def test_job_queue_redrives_to_the_dead_letter_queue(default: Synthesized) -> None:
    from aws_cdk.assertions import Match

    jobs, dlq = queue_ids(default.after)
    default.template().has_resource_properties("AWS::SQS::Queue", {
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, Match.exact("Arn")]},
                          "maxReceiveCount": 3},
        "VisibilityTimeout": 300,
        "SqsManagedSseEnabled": True,
    })
    queues = of_type(default.after, "AWS::SQS::Queue")
    props = queues[jobs]["Properties"]
    # ServiceSettings defaults: 300 s visibility, 3 receives, 20 s long polling
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                                      "maxReceiveCount": 3}
    assert (props["VisibilityTimeout"], props["ReceiveMessageWaitTimeSeconds"]) == (300, 20)
    assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for key in (jobs, dlq):
        assert queues[key]["Properties"]["SqsManagedSseEnabled"] is True
        (policy,) = [p for p in of_type(default.after, "AWS::SQS::QueuePolicy").values()
                     if p["Properties"]["Queues"] == [{"Ref": key}]]
        deny, *allowed = policy["Properties"]["PolicyDocument"]["Statement"]
        assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
        # Only the live-playlist rule may send, and only to the job queue
        (rule,) = of_type(default.after, "AWS::Events::Rule")
        assert [(a["Principal"], a["Action"][0], a["Condition"]) for a in allowed] == (
            [({"Service": "events.amazonaws.com"}, "sqs:SendMessage",
              {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}})] if key == jobs else [])


def test_live_playlists_written_to_the_source_bucket_become_jobs(default: Synthesized) -> None:
    jobs, _ = queue_ids(default.after)
    source = before_id(default.before, "AWS::S3::Bucket", "StorageSource")
    # The before's source bucket sends its object events to EventBridge (no notification custom resource)
    bucket = default.before["Resources"][source]["Properties"]
    assert bucket["NotificationConfiguration"] == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    # And the after's rule sends the playlists written under live/ (not segments, not other prefixes) of
    # that bucket to the job queue
    (rule,) = of_type(default.after, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.s3"], "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [{"Fn::ImportValue": export_of(default.before, source)}]},
                   "object": {"key": [{"wildcard": "live/*.m3u8"}]}}}
    assert rule["Properties"]["Targets"] == [{"Arn": {"Fn::GetAtt": [jobs, "Arn"]}, "Id": "Target0"}]


def test_service_scales_out_on_waiting_jobs_and_in_on_idle_cpu(default: Synthesized,
                                                               graviton: Synthesized) -> None:
    target = one(default.after, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    target = one(graviton.after, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 7)
    asg = one(graviton.after, "AWS::AutoScaling::AutoScalingGroup")
    assert asg["MaxSize"] == "4"  # 5120 MiB tasks: 2 per c7g.2xlarge (14745 MiB usable), 7 tasks → 4

    jobs, _ = queue_ids(default.after)
    (alarm,) = [a["Properties"] for a in of_type(default.after, "AWS::CloudWatch::Alarm").values()]
    # One alarm only: waiting jobs (visible messages) never scale in, a running stream is not visible
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [jobs, "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    policies = [p["Properties"] for p in of_type(default.after, "AWS::ApplicationAutoScaling::ScalingPolicy")
                .values()]
    (step,) = [p for p in policies if p["PolicyType"] == "StepScaling"]
    # ≥ 1 waiting job: one task more; ≥ 5 tasks' worth (5 × 4 = 20): five more
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 19, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 19, "ScalingAdjustment": 5}]
    (cpu,) = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"]
    config = cpu["TargetTrackingScalingPolicyConfiguration"]
    # A full task uses 0.108 × 4 × 1024 = 442 of its 664 units: 67% is the target
    assert config == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
        "TargetValue": 67}


# --- IAM ----------------------------------------------------------------------------------------------


def test_task_role_has_only_what_the_service_does(default: Synthesized) -> None:
    jobs, _ = queue_ids(default.after)
    source = before_id(default.before, "AWS::S3::Bucket", "StorageSource")
    results = before_id(default.before, "AWS::S3::Bucket", "StorageResults")
    topic = before_id(default.before, "AWS::SNS::Topic", "Defects")
    got = sorted((json.dumps(as_list(s["Action"])), json.dumps(s["Resource"]))
                 for s in statements(default.after, TASK_ROLE))
    objects = lambda bucket, prefix: {"Fn::Join": ["", [  # noqa: E731
        {"Fn::ImportValue": export_of(default.before, bucket, "Arn")}, f"/{prefix}*"]]}
    expected = sorted([
        (json.dumps(["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl",
                     "sqs:DeleteMessage", "sqs:GetQueueAttributes"]),
         json.dumps({"Fn::GetAtt": [jobs, "Arn"]})),
        (json.dumps(["s3:GetObject"]), json.dumps([objects(source, "streams/"), objects(source, "live/")])),
        (json.dumps(["s3:PutObject"]), json.dumps(objects(results, "results/"))),
        (json.dumps(["s3:GetObject", "s3:PutObject"]), json.dumps(objects(results, "followers/"))),
        (json.dumps(["sns:Publish"]), json.dumps({"Fn::ImportValue": export_of(default.before, topic)})),
    ])
    assert got == expected
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in statements(default.after, TASK_ROLE))


def test_no_managed_policies_and_no_wildcard_resources_outside_the_ecs_agent(default: Synthesized) -> None:
    for role in of_type(default.after, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    wildcard = sorted(a for s in statements(default.after, "Monitor") if s["Resource"] == "*"
                      for a in as_list(s["Action"]))
    # Only APIs without resource-level permissions: the ECS agent's, ECR's token, the agent's log writes
    assert wildcard == sorted(["ecr:GetAuthorizationToken", "ecr:GetAuthorizationToken",
                               "ecs:DiscoverPollEndpoint", "ecs:Poll", "ecs:StartTelemetrySession",
                               "logs:CreateLogStream", "logs:PutLogEvents"])
    (cluster,) = of_type(default.after, "AWS::ECS::Cluster")
    (poll,) = [s for s in statements(default.after, "MonitorInstanceRole")
               if "ecs:Poll" in as_list(s["Action"])]
    assert poll["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}


# --- network ------------------------------------------------------------------------------------------


def test_public_subnets_no_nat_s3_gateway_endpoint_no_inbound(default: Synthesized) -> None:
    template = default.template()
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::Subnet", 2)
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is True
               for s in of_type(default.after, "AWS::EC2::Subnet").values())
    endpoint = one(default.after, "AWS::EC2::VPCEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".s3"]]}
    assert len(endpoint["RouteTableIds"]) == 2
    group = one(default.after, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in group
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["SecurityGroupEgress"]] == [
        ("tcp", 443, 443)]
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


@pytest.fixture(scope="module", params=["nat", "endpoints"])
def private(request: pytest.FixtureRequest) -> tuple[str, Synthesized]:
    return request.param, synth_both({"after_network": request.param})


def test_private_networks_keep_the_instances_off_the_internet(private: tuple[str, Synthesized]) -> None:
    network, synthesized = private
    after = synthesized.after
    asg = one(after, "AWS::AutoScaling::AutoScalingGroup")
    subnets = of_type(after, "AWS::EC2::Subnet")
    instance_subnets = [s["Ref"] for s in asg["VPCZoneIdentifier"]]
    assert len(instance_subnets) == 2
    # The instances' subnets give no public address, and nothing routes them to the internet gateway
    for subnet in instance_subnets:
        assert subnets[subnet]["Properties"]["MapPublicIpOnLaunch"] is False
    routes = [r["Properties"] for r in of_type(after, "AWS::EC2::Route").values()]
    associations = {a["Properties"]["SubnetId"]["Ref"]: a["Properties"]["RouteTableId"]["Ref"]
                    for a in of_type(after, "AWS::EC2::SubnetRouteTableAssociation").values()}
    for subnet in instance_subnets:
        assert not [r for r in routes if r["RouteTableId"] == {"Ref": associations[subnet]}
                    and "GatewayId" in r]
    endpoints = [e["Properties"] for e in of_type(after, "AWS::EC2::VPCEndpoint").values()]
    assert [e["VpcEndpointType"] for e in endpoints].count("Gateway") == 1  # S3, in every variant
    if network == "nat":
        # One NAT gateway per AZ, each instance subnet's default route through the one in its AZ
        assert len(of_type(after, "AWS::EC2::NatGateway")) == 2
        nat_routes = [r for r in routes if "NatGatewayId" in r]
        assert sorted(r["RouteTableId"]["Ref"] for r in nat_routes) == sorted(
            associations[s] for s in instance_subnets)
    else:
        assert not of_type(after, "AWS::EC2::NatGateway") and not of_type(after, "AWS::EC2::InternetGateway")
        interface = [e for e in endpoints if e["VpcEndpointType"] == "Interface"]
        # com.amazonaws.<region>.<service>: what the ECS agent, the image pull, the log driver and the
        # service call
        assert sorted(e["ServiceName"]["Fn::Join"][1][-1] for e in interface) == sorted([
            ".ecs", ".ecs-agent", ".ecs-telemetry", ".ecr.api", ".ecr.dkr", ".logs", ".sqs", ".sns"])
        assert all(e["PrivateDnsEnabled"] for e in interface)
        # Each endpoint admits HTTPS from the instances' group only
        (instances,) = [k for k, g in of_type(after, "AWS::EC2::SecurityGroup").items()
                        if "ECS instances" in g["Properties"]["GroupDescription"]]
        ingress = [i["Properties"] for i in of_type(after, "AWS::EC2::SecurityGroupIngress").values()]
        assert len(ingress) == 8
        assert all(i["SourceSecurityGroupId"] == {"Fn::GetAtt": [instances, "GroupId"]}
                   and (i["FromPort"], i["ToPort"]) == (443, 443) for i in ingress)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])


# --- what the two stacks share ------------------------------------------------------------------------


def test_after_reuses_the_befores_resources_and_the_before_knows_nothing_of_the_after(
        default: Synthesized) -> None:
    # The after creates no bucket, topic or function of its own
    for kind in ("AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::Lambda::Function", "AWS::Glue::Table"):
        assert not of_type(default.after, kind), kind
    # The before imports nothing, so it never waits for the after (no cycle)
    assert "Fn::ImportValue" not in json.dumps(default.before)
    stack_deps = lambda name: [d.id for d in default.assembly.get_stack_by_name(name).dependencies  # noqa: E731
                               if not d.id.endswith(".assets")]
    assert (stack_deps(AFTER), stack_deps(BEFORE)) == ([BEFORE], [])
    # Every import of the after is an export of the before
    exports = {o["Export"]["Name"] for o in default.before["Outputs"].values() if "Export" in o}
    imports = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                imports.add(node["Fn::ImportValue"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(default.after)
    assert imports and imports <= exports
    # The before's own outputs are unchanged; only CDK's export outputs are added
    named = {k for k, o in default.before["Outputs"].items() if "Export" not in o}
    assert named == {"StateMachineArn", "SourceBucket", "ResultsBucket", "FramesBucket", "TopicArn",
                     "FailedInvocationsQueueUrl", "AlarmsTopicArn"}


def test_after_outputs_name_its_queues_and_the_shared_resources(default: Synthesized) -> None:
    outputs = default.after["Outputs"]
    jobs, dlq = queue_ids(default.after)
    assert outputs["JobQueueUrl"]["Value"] == {"Ref": jobs}
    assert outputs["DeadLetterQueueUrl"]["Value"] == {"Ref": dlq}
    for key in ("SourceBucket", "ResultsBucket", "TopicArn"):
        # the same resource the before's output of that name gives
        (export,) = [o["Export"]["Name"] for o in default.before["Outputs"].values()
                     if "Export" in o and o["Value"] == default.before["Outputs"][key]["Value"]]
        assert outputs[key]["Value"] == {"Fn::ImportValue": export}


# --- LocalStack ---------------------------------------------------------------------------------------


def test_localstack_variant_has_the_queues_and_outputs_but_no_ecs(localstack: Synthesized) -> None:
    kinds = {r["Type"] for r in localstack.after["Resources"].values()}
    assert kinds == {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"}
    jobs, _ = queue_ids(localstack.after)
    assert localstack.after["Resources"][jobs]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    assert set(localstack.after["Outputs"]) == {"JobQueueUrl", "DeadLetterQueueUrl", "SourceBucket",
                                                "ResultsBucket", "TopicArn"}
    # No container image to build: cdklocal deploys it without Docker
    assets = json.loads((localstack.outdir / f"{AFTER}.assets.json").read_text())
    assert not assets.get("dockerImages")


# --- checks -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "graviton", "localstack"])
def test_nag_is_clean_for_both_stacks(variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(variant)
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])
    after = [v for v in plugin["suppressedViolations"]
             if any(r["constructPath"].startswith(AFTER) for r in v["violatingConstructs"])]
    if variant != "localstack":
        rules = {v["ruleName"].split("[")[0] for v in after}
        assert {"AwsSolutions-ECS4", "AwsSolutions-IAM5", "AwsSolutions-VPC7", "AwsSolutions-AS3"} <= rules
    assert all(len(v["reason"].split()) >= 8 for v in after)


def test_docker_context_is_only_what_the_service_needs(default: Synthesized) -> None:
    assets = json.loads((default.outdir / f"{AFTER}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["platform"] == "linux/amd64"
    staged = default.outdir / image["source"]["directory"]
    assert {p.name for p in staged.iterdir()} == {
        "Dockerfile", ".dockerignore", "pyproject.toml", "requirements.lock", "lambdas", "monolith",
        "settings", "text_tables"}
    assert not list(staged.rglob("__pycache__")) and not list(staged.rglob("*.pyc"))
    assert (staged / "settings" / "__init__.py").exists()


def test_imported_source_buckets_are_read_under_their_streams_prefix() -> None:
    key = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    synthesized = synth_both({"source_bucket_names": "cams-eu,cams-us", "source_kms_key_arns": key})
    assert env(synthesized.after)["MONITOR_SOURCE_BUCKETS"] == "cams-eu,cams-us"
    (read,) = [s for s in statements(synthesized.after, TASK_ROLE) if s["Action"] == "s3:GetObject"]
    assert read["Resource"] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":s3:::{name}/{prefix}/*"]]}
        for name in ("cams-eu", "cams-us") for prefix in ("streams", "live")]
    # SSE-KMS objects: Decrypt on exactly the given key, nothing else of KMS
    kms = [s for s in statements(synthesized.after, TASK_ROLE)
           if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert [(s["Action"], s["Resource"]) for s in kms] == [("kms:Decrypt", key)]
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    (plugin,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert (plugin["conclusion"], plugin["violations"]) == ("success", [])


def test_cdk_json_states_the_after_defaults() -> None:
    # The CLI reads cdk.json, the tests build the app without it: both must give the same after
    from aws_cdk import App

    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    assert {k for k in context if k.startswith("after_")} == {
        "after_instance_type", "after_resolution", "after_concurrency", "after_detectors", "after_min_tasks",
        "after_max_tasks", "after_network"}
    assert AfterConfig.from_node(App(context=context).node) == AfterConfig()


def test_production_protects_instances_that_run_tasks_and_keeps_its_logs() -> None:
    synthesized = synth_both({"stage": "prod"})
    assert synthesized.stacks.after.stack_name == "StreamQuality-after-prod"
    after = synthesized.after
    provider = one(after, "AWS::ECS::CapacityProvider")["AutoScalingGroupProvider"]
    assert provider["ManagedTerminationProtection"] == "ENABLED"
    assert one(after, "AWS::AutoScaling::AutoScalingGroup")["NewInstancesProtectedFromScaleIn"] is True
    (logs,) = of_type(after, "AWS::Logs::LogGroup").values()
    assert logs["DeletionPolicy"] == "Retain"
    jobs, dlq = queue_ids(after)
    assert after["Resources"][jobs]["DeletionPolicy"] == after["Resources"][dlq]["DeletionPolicy"] == "Retain"


def test_by_default_the_task_is_sized_from_the_committed_calibration() -> None:
    from calibration import CALIBRATION_PATH

    synthesized = synth_both({"after_calibration": ""})
    committed = AfterConfig(calibration_path=str(CALIBRATION_PATH)).task_size
    assert (container(synthesized.after)["Cpu"], container(synthesized.after)["Memory"]) == (
        committed.cpu_units, committed.memory_mib)
    assert AfterConfig().calibration.path == CALIBRATION_PATH


def test_a_missing_calibration_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nowhere\.json: cannot read the calibration"):
        AfterConfig(calibration_path=str(tmp_path / "nowhere.json"))
