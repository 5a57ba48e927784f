"""The after's compute: `monolith serve` in a container on an ECS cluster of EC2 instances.

- Network (context `after_network`): by default public subnets in two AZs, no NAT gateway; S3 traffic goes
  through a (free) gateway endpoint, SQS/SNS/ECR/ECS/CloudWatch Logs through the internet gateway over TLS.
  `nat` and `endpoints` put the instances in private subnets behind NAT gateways or interface endpoints.
  Nothing is reachable from outside: the instances' security group has no inbound rule.
- Fleet: an Auto Scaling group (launch template, ECS-optimised Amazon Linux 2023, IMDSv2, encrypted gp3)
  as the cluster's capacity provider, with managed scaling: ECS adds instances when tasks cannot be placed
  and drains an instance before removing it.
- Service: `aws_ecs_patterns.QueueProcessingEc2Service` on the job queue; the task's CPU comes from the
  measured CPU-s per stream-second × concurrency, its memory from the measured peak of a whole task at
  that concurrency (monolith/sizing.py).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.after_config import AZS, EBS_GIB, INTERFACE_ENDPOINTS, STREAMS_PREFIX, AfterConfig
from infra.checkov import skip_check
from infra.config import MonitorConfig
from infra.functions import stage_log_group
from infra.nag import acknowledge, acknowledge_object_prefix
from infra.shared import SharedResources
from lambdas.shared.live import LIVE_PREFIX
from lambdas.shared.results import RESULTS_PREFIX
from settings import FOLLOWERS_PREFIX, STOP_TIMEOUT_S, ServiceSettings

ROOT = Path(__file__).resolve().parent.parent  # the Dockerfile's build context (.dockerignore trims it)
CONTAINER_NAME = "monitor"


class Network(Construct):
    """Two AZs, an S3 gateway endpoint, a security group with no inbound rule, and one of three paths to
    the other AWS APIs (infra/after_config.py NETWORKS): public subnets, NAT gateways, interface endpoints."""

    def __init__(self, scope: Construct, construct_id: str, *, network: str) -> None:
        super().__init__(scope, construct_id)
        instances = {"public": ec2.SubnetType.PUBLIC, "nat": ec2.SubnetType.PRIVATE_WITH_EGRESS,
                     "endpoints": ec2.SubnetType.PRIVATE_ISOLATED}[network]
        subnets = [ec2.SubnetConfiguration(name="instances", subnet_type=instances, cidr_mask=24)]
        if network == "nat":  # the NAT gateways live in public subnets
            subnets.append(ec2.SubnetConfiguration(name="nat", subnet_type=ec2.SubnetType.PUBLIC,
                                                   cidr_mask=28))
        self.instance_subnets = ec2.SubnetSelection(subnet_type=instances)
        self.vpc = ec2.Vpc(
            self, "Vpc",
            max_azs=AZS,
            nat_gateways=AZS if network == "nat" else 0,  # one per AZ: an AZ outage does not cut the other
            subnet_configuration=subnets,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)},
            # True would add CDK's Node.js custom-resource Lambda; the default group is left unused instead.
            restrict_default_security_group=False,
        )
        acknowledge(self.vpc, "AwsSolutions-VPC7",
                    "No flow logs: the VPC only carries the instances' outbound HTTPS calls to AWS APIs, and "
                    "flow logs would be billed per GB for every stream read; add them for an audit.")
        self.security_group = ec2.SecurityGroup(
            self, "Instances", vpc=self.vpc, allow_all_outbound=False,
            description="ECS instances of the after: no inbound, outbound HTTPS to AWS APIs only")
        # Every AWS API the tasks and the ECS agent call is HTTPS; DNS and the time service are link-local
        # addresses that security groups do not filter.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs over TLS")
        if network == "endpoints":
            for name, service in INTERFACE_ENDPOINTS.items():
                endpoint = self.vpc.add_interface_endpoint(
                    name, service=ec2.InterfaceVpcEndpointAwsService(service), private_dns_enabled=True,
                    subnets=self.instance_subnets,
                    open=False)  # reachable from the instances' group only, not the whole VPC
                endpoint.connections.allow_default_port_from(self.security_group)


class MonitorService(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig, after: AfterConfig,
        shared: SharedResources, queue: sqs.IQueue, settings: ServiceSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.network = Network(self, "Network", network=after.network)
        self.cluster = self._cluster(config, after)
        size = after.task_size
        arm64 = after.instance.arm64
        log_group = stage_log_group(self, "Logs", config)
        self.service = ecs_patterns.QueueProcessingEc2Service(
            self, "Service",
            cluster=self.cluster,
            queue=queue,
            # The Dockerfile's CMD is the serve command; built by `cdk deploy` (synth only stages it).
            image=ecs.ContainerImage.from_asset(
                str(ROOT),
                platform=ecr_assets.Platform.LINUX_ARM64 if arm64 else ecr_assets.Platform.LINUX_AMD64),
            container_name=CONTAINER_NAME,
            cpu=size.cpu_units,
            memory_limit_mib=size.memory_mib,
            environment={**settings.environment(),
                         "AWS_REGION": Aws.REGION, "AWS_DEFAULT_REGION": Aws.REGION},
            log_driver=ecs.LogDrivers.aws_logs(stream_prefix="monitor", log_group=log_group),
            min_scaling_capacity=after.min_tasks,
            max_scaling_capacity=after.max_tasks,
            # Scale out on jobs waiting: a job stays visible only while every running task is full.
            # From one waiting job, one task more (again after each cooldown while jobs still wait); from
            # five tasks' worth of waiting jobs, five more. Nothing here scales in (see below).
            scaling_steps=[appscaling.ScalingInterval(lower=1, change=1),
                           appscaling.ScalingInterval(lower=5 * after.concurrency, change=5)],
            # Scale in when the tasks' CPU falls below what a full task uses: a task reserves the measured
            # CPU plus headroom, so a full one runs at 1/(1+headroom) of its reservation.
            cpu_target_utilization_percent=after.full_task_cpu_percent,
            capacity_provider_strategies=[ecs.CapacityProviderStrategy(
                capacity_provider=self.capacity_provider.capacity_provider_name, weight=1)],
            placement_strategies=[ecs.PlacementStrategy.packed_by_memory() if after.memory_bound
                                  else ecs.PlacementStrategy.packed_by_cpu()],
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            family=f"stream-quality-after-{config.stage}",
        )
        task_definition = self.service.task_definition
        cfn_task = task_definition.node.default_child
        assert isinstance(cfn_task, ecs.CfnTaskDefinition)
        cfn_task.add_property_override("ContainerDefinitions.0.StopTimeout", STOP_TIMEOUT_S)
        self._grant(task_definition.task_role, shared, config)
        self._acknowledge(task_definition)

    def _cluster(self, config: MonitorConfig, after: AfterConfig) -> ecs.Cluster:
        instance = after.instance
        role = iam.Role(self, "InstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
                        description="ECS container instances of the after: the ECS agent's calls only")
        template = ec2.LaunchTemplate(
            self, "Instances",
            instance_type=ec2.InstanceType(instance.instance_type),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(
                ecs.AmiHardwareType.ARM if instance.arm64 else ecs.AmiHardwareType.STANDARD),
            user_data=ec2.UserData.for_linux(),  # the capacity provider adds the cluster's name to it
            role=role,
            security_group=self.network.security_group,
            # IMDSv2 with the default hop limit of 1: containers (one hop further, bridge mode) cannot reach
            # the instance role; they get their task role from the ECS agent's endpoint, the region from
            # AWS_REGION.
            require_imdsv2=True,
            block_devices=[ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume.ebs(
                EBS_GIB, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3,
                delete_on_termination=True))],
        )
        fleet = autoscaling.AutoScalingGroup(
            self, "Fleet",
            vpc=self.network.vpc,
            vpc_subnets=self.network.instance_subnets,
            launch_template=template,
            min_capacity=0,
            max_capacity=after.max_instances,
        )
        acknowledge(fleet, "AwsSolutions-AS3",
                    "ECS managed scaling owns this group's size; scaling events are visible in the ECS "
                    "service events and CloudTrail, so no separate SNS notifications are configured.")
        self.capacity_provider = ecs.AsgCapacityProvider(
            self, "Capacity", auto_scaling_group=fleet,
            enable_managed_scaling=True,
            # Draining stops an instance's tasks (SIGTERM, StopTimeout) before the group terminates it.
            # Termination protection also keeps instances with tasks from scale-in, but leaves them
            # protected when the stack is deleted (aws-cdk#18179): production only, sandboxes must destroy.
            enable_managed_termination_protection=not config.sandbox,
            enable_managed_draining=True, target_capacity_percent=100,
        )
        cluster = ecs.Cluster(self, "Cluster", vpc=self.network.vpc,
                              container_insights_v2=ecs.ContainerInsights.DISABLED)
        cluster.add_asg_capacity_provider(self.capacity_provider)
        acknowledge(cluster, "AwsSolutions-ECS4",
                    "Container Insights is billed per metric per task; the service publishes its own "
                    "metrics with Powertools and CPU/memory come from the service's standard metrics.")
        skip_check(cluster, "CKV_AWS_65",
                   "Container Insights is billed per metric per task; the service publishes its own metrics "
                   "with Powertools and CPU/memory come from the service's standard metrics.")
        default_policy = role.node.try_find_child("DefaultPolicy")
        assert default_policy is not None, "the capacity provider adds the ECS agent's statements to the role"
        skip_check(default_policy, "CKV_AWS_111",
                   "The write actions on * are the ECS agent's log writes (logs:CreateLogStream, "
                   "PutLogEvents) as aws-cdk-lib adds them for EC2 capacity; the task's own writes are "
                   "scoped to the results prefix and the topic.")
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
                    "The ECS agent's statements added by aws-cdk-lib: DiscoverPollEndpoint, "
                    "ecr:GetAuthorizationToken and the agent's own log writes accept no narrower resource; "
                    "Poll and StartTelemetrySession carry a condition naming this cluster.")
        acknowledge(role, "AwsSolutions-IAM5[Action::ecs:Submit*]",
                    "ecs:Submit* (container and task state changes) is the ECS agent's statement as "
                    "aws-cdk-lib writes it for EC2 capacity; scoped to this cluster.")
        return cluster

    def _grant(self, role: iam.IRole, shared: SharedResources, config: MonitorConfig) -> None:
        """Least privilege beyond the pattern's SQS consume grant: read streams, write results, publish."""
        streams = f"{STREAMS_PREFIX}*"
        live = f"{LIVE_PREFIX}*"
        results = f"{RESULTS_PREFIX}*"
        followers = f"{FOLLOWERS_PREFIX}*"
        # GetObject also authorises HeadObject; the task lists nothing and writes nothing else.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[b.arn_for_objects(prefix) for b in shared.source_buckets
                                                 for prefix in (streams, live)]))
        if config.source_kms_key_arns:  # imported source buckets with SSE-KMS: reading needs the key
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=["kms:Decrypt"], resources=list(config.source_kms_key_arns)))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[shared.results_bucket.arn_for_objects(results)]))
        # Live streams: each followed stream's lease and checkpoint (monolith/live.py)
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[shared.results_bucket.arn_for_objects(followers)]))
        # sns:Publish on the one topic, plus the key's data-key actions if the topic has a customer key.
        shared.topic.grant_publish(role)
        for bucket in shared.source_buckets:
            acknowledge_object_prefix(role, bucket, streams,
                                      "Streams are uploaded under streams/ with keys unknown in advance; "
                                      "the task only reads them (GetObject).")
            acknowledge_object_prefix(role, bucket, live,
                                      "Live streams' playlists and segments are written under live/ with "
                                      "keys unknown in advance; the task only reads them (GetObject).")
        acknowledge_object_prefix(role, shared.results_bucket, followers,
                                  "One lease-and-checkpoint object per live stream followed, keyed by "
                                  "stream id under followers/: read and written conditionally.")
        acknowledge_object_prefix(role, shared.results_bucket, results,
                                  "Results objects are keyed by date, stream and second under results/; "
                                  "the task only creates them (PutObject).")

    def _acknowledge(self, task_definition: ecs.TaskDefinition) -> None:
        acknowledge(task_definition, "AwsSolutions-ECS2",
                    "The environment holds only resource names and tuning knobs (queue URL, bucket and "
                    "topic names, concurrency): no secrets.")
        execution_role = task_definition.execution_role
        if execution_role is not None:
            acknowledge(execution_role, "AwsSolutions-IAM5[Resource::*]",
                        "ecr:GetAuthorizationToken, added by aws-cdk-lib to pull the image, accepts no "
                        "narrower resource than *.")
