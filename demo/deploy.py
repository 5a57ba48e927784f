"""Deploy the unchanged CDK app to a LocalStack endpoint with the pinned `cdklocal`, and read its outputs.

The three stacks are deployed: the before (`StreamQuality-<stage>`), the after
(`StreamQuality-after-<stage>`), which on LocalStack is its job queue and dead-letter queue only (no ECS
in the free edition: the service runs as local processes against them) and reuses the before's buckets
and topic, and the event-driven serverless design (`StreamQuality-serverless-<stage>`), which reuses
them too.

The app is synthesised (`-c localstack=true`: no Glue/Athena, no Node.js helper Lambdas, no ECS) while the
CDK toolkit stack is bootstrapped — both take ~10 s and neither needs the other —, then the cloud assembly
is deployed as is. The assembly lives in `cdk.out/localstack/` (not the `cdk.out` other synths use):
the Lambda packages are built there once and reused while their sources and pins are unchanged.

    python -m demo.deploy --endpoint http://127.0.0.1:4566     # prints the outputs as JSON
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from infra.after_config import after_stack_name
from infra.config import stack_name
from infra.serverless_stack import serverless_stack_name
from monolith.local_tasks import load_launcher

ROOT = Path(__file__).resolve().parent.parent
ASSEMBLY = ROOT / "cdk.out" / "localstack"
CDKLOCAL = ROOT / "node_modules" / ".bin" / "cdklocal"
ACCOUNT = "000000000000"  # LocalStack's default account
REGION = "us-east-1"
STAGE = "dev"


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class AfterStack:
    """What the deployed after stack exposes (its CfnOutputs): its queues, the before's shared resources."""

    name: str
    job_queue_url: str
    dead_letter_queue_url: str
    source_bucket: str
    results_bucket: str
    topic_arn: str


@dataclass(frozen=True)
class ServerlessStack:
    """What the deployed event-driven serverless stack exposes (its CfnOutputs)."""

    name: str
    segment_queue_url: str
    dead_letter_queue_url: str
    state_bucket: str
    function_name: str
    source_bucket: str
    results_bucket: str
    topic_arn: str


@dataclass(frozen=True)
class Stack:
    """What the deployed before stack exposes (its CfnOutputs), the after beside it, and what the
    deployment of both took."""

    name: str
    state_machine_arn: str
    source_bucket: str
    results_bucket: str
    frames_bucket: str
    topic_arn: str
    deploy_s: float = 0.0
    synth_s: float = 0.0
    bootstrap_s: float = 0.0
    after: AfterStack | None = None
    # Where an asynchronous invocation (corrective action, live starter) that failed after Lambda's
    # retries, or could not be delivered, ends up.
    failed_invocations_url: str = ""
    alarms_topic_arn: str = ""  # the alarm on that queue notifies this topic
    serverless: ServerlessStack | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def cdk_env(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """Environment for cdklocal against `endpoint_url`: the LocalStack client environment plus CDK's own."""
    return {
        **os.environ,
        **load_launcher().client_env(endpoint_url, region),
        "CDK_DEFAULT_ACCOUNT": ACCOUNT,
        "CDK_DEFAULT_REGION": region,
        # jsii's Node 20 end-of-life banner and the CLI's version notices are noise here.
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CI": "true",  # no interactive progress bars in captured output
    }


def ensure_cli() -> None:
    if not CDKLOCAL.exists():  # `make node` does this too; the package-lock pins the versions
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], env=dict(os.environ), what="npm ci")


def _run(command: list[str], *, env: dict[str, str], what: str) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-40:])
        raise DeployError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout + done.stderr


@contextlib.contextmanager
def _assembly_lock() -> Iterator[None]:
    # One synth at a time into the shared assembly folder (a demo and a test session may overlap).
    ASSEMBLY.mkdir(parents=True, exist_ok=True)
    with open(ASSEMBLY.parent / ".localstack-synth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def deploy(endpoint_url: str, *, context: dict[str, str] | None = None, stage: str = STAGE) -> Stack:
    """Bootstrap + synth (in parallel), then deploy both stacks; return their outputs."""
    ensure_cli()
    env = cdk_env(endpoint_url)
    ctx = {"localstack": "true", "stage": stage, **(context or {})}
    ctx_args = [arg for key, value in ctx.items() for arg in ("-c", f"{key}={value}")]
    name, after_name = stack_name(ctx["stage"]), after_stack_name(ctx["stage"])
    serverless_name = serverless_stack_name(ctx["stage"])
    started = time.monotonic()
    with _assembly_lock():
        bootstrap = subprocess.Popen(
            [str(CDKLOCAL), "bootstrap", "--app", "", f"aws://{ACCOUNT}/{REGION}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _run([str(CDKLOCAL), "synth", "-q", "-o", str(ASSEMBLY), *ctx_args], env=env, what="cdk synth")
            synth_s = time.monotonic() - started
        finally:
            output, _ = bootstrap.communicate()
        bootstrap_s = time.monotonic() - started
        if bootstrap.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-40:])
            raise DeployError(f"cdklocal bootstrap failed (exit {bootstrap.returncode}):\n{tail}")
        outputs_file = ASSEMBLY / f"outputs-{os.getpid()}.json"
        _run(
            [
                str(CDKLOCAL),
                "deploy",
                name,
                after_name,
                serverless_name,
                "--app",
                str(ASSEMBLY),
                "--require-approval",
                "never",
                "--outputs-file",
                str(outputs_file),
                "--progress",
                "events",
            ],
            env=env,
            what="cdklocal deploy",
        )
    try:
        deployed = json.loads(outputs_file.read_text())
    finally:
        outputs_file.unlink(missing_ok=True)
    outputs, after, serverless = deployed[name], deployed[after_name], deployed[serverless_name]
    return Stack(
        name=name,
        state_machine_arn=outputs["StateMachineArn"],
        source_bucket=outputs["SourceBucket"],
        results_bucket=outputs["ResultsBucket"],
        frames_bucket=outputs["FramesBucket"],
        topic_arn=outputs["TopicArn"],
        failed_invocations_url=outputs["FailedInvocationsQueueUrl"],
        alarms_topic_arn=outputs["AlarmsTopicArn"],
        deploy_s=round(time.monotonic() - started, 2),
        synth_s=round(synth_s, 2),
        bootstrap_s=round(bootstrap_s, 2),
        after=AfterStack(
            name=after_name,
            job_queue_url=after["JobQueueUrl"],
            dead_letter_queue_url=after["DeadLetterQueueUrl"],
            source_bucket=after["SourceBucket"],
            results_bucket=after["ResultsBucket"],
            topic_arn=after["TopicArn"],
        ),
        serverless=ServerlessStack(
            name=serverless_name,
            segment_queue_url=serverless["SegmentQueueUrl"],
            dead_letter_queue_url=serverless["DeadLetterQueueUrl"],
            state_bucket=serverless["StateBucket"],
            function_name=serverless["FunctionName"],
            source_bucket=serverless["SourceBucket"],
            results_bucket=serverless["ResultsBucket"],
            topic_arn=serverless["TopicArn"],
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="LocalStack URL (default: $AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--stage", default=STAGE)
    args = parser.parse_args()
    if not args.endpoint:
        sys.exit("error: give --endpoint or set AWS_ENDPOINT_URL (e.g. source .localstack/env.sh)")
    try:
        stack = deploy(args.endpoint, stage=args.stage)
    except DeployError as error:
        sys.exit(f"error: {error}")
    print(json.dumps(stack.to_dict(), indent=2))


if __name__ == "__main__":
    main()
