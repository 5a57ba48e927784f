"""The Lambda functions: the converter, one function per enabled detector, the corrective action.

Each function has its own role with only what it does (no AWS managed policies) and its own log group
with a retention (instead of the LogRetention custom resource, a Node.js Lambda).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Fn, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.bundling import CONVERTER, CORRECTIVE_ACTION, DETECTORS, PackageSpec, lambda_code
from infra.checkov import FUNCTION_SKIPS, LOG_GROUP_SKIP, skip_check
from infra.config import MonitorConfig
from infra.nag import acknowledge, acknowledge_object_prefix
from lambdas.shared.faults import ENV as FAULTS_ENV
from lambdas.shared.frame_store import FRAMES_PREFIX
from lambdas.shared.results import ACTIONS_PREFIX

RUNTIME = lambda_.Runtime.PYTHON_3_13
FRAMES_REASON = ("Frame and audio objects are created per stream-second under frames/<stream>/<execution>/; "
                 "the key prefix is the narrowest scope, and the action is a single one.")
SYNCHRONOUS_REASON = ("Step Functions invokes this function synchronously and handles its errors (Retry, "
                      "Catch); a dead-letter queue only ever receives asynchronous invocations.")
NAMESPACE = "StreamQualityMonitor"
# Each detector function's handler, as the Lambda runtime imports it.
DETECTOR_HANDLERS = {
    "freeze": "lambdas.detectors.handlers.freeze_handler",
    "block_corruption": "lambdas.detectors.handlers.block_corruption_handler",
    "av_sync": "lambdas.detectors.handlers.av_sync_handler",
}


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    service: str  # POWERTOOLS_SERVICE_NAME
    handler: str
    package: PackageSpec
    memory_mb: int
    timeout_s: int


class Functions(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig,
        source_buckets: list[s3.IBucket], temp_bucket: s3.IBucket, results_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._codes: dict[str, lambda_.Code] = {}
        # Test-only fault injection (LocalStack): the workflow's functions get the plan and its timeout.
        plan = config.fault_plan
        faults = {FAULTS_ENV: config.fault_injection} if plan and config.fault_injection else {}
        self.converter = self.function(
            FunctionSpec("Converter", "converter", "lambdas.converter.handler.handler", CONVERTER,
                         config.converter_memory_mb, plan.function_timeout_s if plan else 120),
            {"TEMP_BUCKET": temp_bucket.bucket_name, "FRAMES_PER_SECOND": str(config.frames_per_second),
             # A stream whose second the detectors could not hold is refused up front (service.check_fits).
             "DETECTOR_MEMORY_MB": str(config.detector_memory_mb),
             # Requests naming any other bucket are refused before anything is read.
             "SOURCE_BUCKETS": Fn.join(",", [b.bucket_name for b in source_buckets]), **faults},
            # /tmp holds one downloaded stream per warm environment.
            ephemeral_mb=2048,
        )
        skip_check(self.converter, "CKV_AWS_116", SYNCHRONOUS_REASON)
        # Explicit actions, no s3:GetObject*-style wildcards: HeadObject is authorised by s3:GetObject.
        allow(self.converter, ["s3:GetObject"], [b.arn_for_objects("*") for b in source_buckets])
        allow(self.converter, ["s3:PutObject"], [temp_bucket.arn_for_objects(f"{FRAMES_PREFIX}*")])
        if config.source_kms_key_arns:  # imported buckets encrypted with SSE-KMS: GetObject needs the key
            allow(self.converter, ["kms:Decrypt"], list(config.source_kms_key_arns))
        for bucket in source_buckets:
            acknowledge_object_prefix(self.converter.role, bucket, "*",
                                      "Streams may have any key in the source bucket; read-only (GetObject).")
        acknowledge_object_prefix(self.converter.role, temp_bucket, f"{FRAMES_PREFIX}*", FRAMES_REASON)

        self.detectors: dict[str, lambda_.Function] = {}
        for name in config.detectors:
            fn = self.function(
                FunctionSpec(_camel(name), f"detector-{name}", DETECTOR_HANDLERS[name], DETECTORS,
                             config.detector_memory_mb, plan.function_timeout_s if plan else 60),
                {"TEMP_BUCKET": temp_bucket.bucket_name, **faults},
            )
            allow(fn, ["s3:GetObject"], [temp_bucket.arn_for_objects(f"{FRAMES_PREFIX}*")])
            acknowledge_object_prefix(fn.role, temp_bucket, f"{FRAMES_PREFIX}*", FRAMES_REASON)
            skip_check(fn, "CKV_AWS_116", SYNCHRONOUS_REASON)
            self.detectors[name] = fn

        self.corrective_action = self.function(
            FunctionSpec("CorrectiveAction", "corrective-action", "lambdas.corrective_action.handler.handler",
                         CORRECTIVE_ACTION, 256, 30),
            {"RESULTS_BUCKET": results_bucket.bucket_name},
        )
        # Its failure path (SNS invokes it asynchronously) is the topic's side: infra/notifications.py.
        actions = f"{ACTIONS_PREFIX}*"
        allow(self.corrective_action, ["s3:PutObject"], [results_bucket.arn_for_objects(actions)])
        acknowledge_object_prefix(self.corrective_action.role, results_bucket, actions,
                                  "One object per defect event under actions/<stream>/; keys are not known "
                                  "in advance. PutObject only.")

    def function(self, spec: FunctionSpec, environment: dict[str, str], ephemeral_mb: int = 512
                  ) -> lambda_.Function:
        fn = lambda_function(self, self._config, spec, self._code(spec.package), environment, ephemeral_mb)
        for check_id, reason in FUNCTION_SKIPS.items():
            skip_check(fn, check_id, reason)
        return fn

    def _code(self, package: PackageSpec) -> lambda_.Code:
        # The three detector functions share one asset (one build, one upload).
        if package.name not in self._codes:
            self._codes[package.name] = lambda_code(package, self._config.architecture,
                                                    bundle=self._config.bundle)
        return self._codes[package.name]


def lambda_function(scope: Construct, config: MonitorConfig, spec: FunctionSpec, code: lambda_.Code,
                    environment: dict[str, str], ephemeral_mb: int = 512, role_description: str | None = None
                    ) -> lambda_.Function:
    """A function with its own role (nothing but its log group and X-Ray until callers allow more), its
    own log group with the stage's retention, active tracing and Powertools' settings."""
    log_group = stage_log_group(scope, f"{spec.construct_id}Logs", config)
    role = iam.Role(scope, f"{spec.construct_id}Role",
                    assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=role_description
                    or f"{spec.service}: runs one step of the stream-quality workflow")
    log_group.grant_write(role)
    fn = lambda_.Function(
        scope, spec.construct_id,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.ARM_64 if config.architecture == "arm64"
        else lambda_.Architecture.X86_64,
        handler=spec.handler,
        code=code,
        memory_size=spec.memory_mb,
        timeout=Duration.seconds(spec.timeout_s),
        ephemeral_storage_size=None if ephemeral_mb == 512 else _mib(ephemeral_mb),
        role=role,
        log_group=log_group,
        tracing=lambda_.Tracing.ACTIVE,
        environment={
            **environment,
            "POWERTOOLS_SERVICE_NAME": spec.service,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        },
    )
    acknowledge(fn, "AwsSolutions-L1",
        "python3.13 on purpose: the bundled wheels (av, numpy) are built for cp313, and the "
               "monolith and tests run on 3.13; python3.13 is supported until 2029-06-30.")
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]",
        "X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions.")
    return fn


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def allow(fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
    fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _mib(value: int) -> Size:
    return Size.mebibytes(value)


def removal_policy(config: MonitorConfig) -> RemovalPolicy:
    """Sandbox stages are destroyed with their data; other stages keep it when the stack goes."""
    return RemovalPolicy.DESTROY if config.sandbox else RemovalPolicy.RETAIN


def stage_log_group(scope: Construct, construct_id: str, config: MonitorConfig) -> logs.LogGroup:
    """A log group with the stage's retention and removal policy."""
    log_group = logs.LogGroup(scope, construct_id, retention=retention(config.log_retention_days),
                              removal_policy=removal_policy(config))
    skip_check(log_group, *LOG_GROUP_SKIP)
    return log_group


def retention(days: int) -> logs.RetentionDays:
    """The shortest supported retention that keeps logs at least `days` days."""
    r = logs.RetentionDays
    steps = [(1, r.ONE_DAY), (3, r.THREE_DAYS), (7, r.ONE_WEEK), (14, r.TWO_WEEKS), (30, r.ONE_MONTH),
             (90, r.THREE_MONTHS), (180, r.SIX_MONTHS), (365, r.ONE_YEAR)]
    return next((value for limit, value in steps if days <= limit), r.TEN_YEARS)
