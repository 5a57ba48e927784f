#!/usr/bin/env python3
"""CDK app: the serverless "before" stream-quality monitor, the "after" (the monolith as a service on
ECS) and the event-driven serverless design beside them, all checked by cdk-nag's AWS Solutions rules.

Configuration comes from CDK context (cdk.json, `-c key=value`): see infra/config.py (both stacks) and
infra/after_config.py (the after's `after_*` keys).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.after_config import AfterConfig, after_stack_name
from infra.after_stack import StreamQualityAfterStack
from infra.config import MonitorConfig
from infra.serverless import segment_settings
from infra.serverless_stack import StreamQualityServerlessStack, serverless_stack_name
from infra.stack import StreamQualityStack


@dataclass(frozen=True)
class Stacks:
    app: cdk.App
    before: StreamQualityStack
    after: StreamQualityAfterStack
    serverless: StreamQualityServerlessStack


def build_stacks(context: dict | None = None) -> Stacks:
    app = cdk.App(context=context)
    config = MonitorConfig.from_node(app.node)
    after_config = AfterConfig.from_node(app.node)
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                          region=config.region or os.environ.get("CDK_DEFAULT_REGION"))
    before = StreamQualityStack(
        app, config.stack_name,
        config=config,
        env=env,
        description="Stream-quality monitor, serverless 'before' architecture (a workflow per stream-second)",
    )
    # The after reuses the before's buckets, topic and corrective action (cross-stack references): it
    # depends on the before, never the reverse.
    after = StreamQualityAfterStack(
        app, after_stack_name(config.stage),
        config=config,
        after=after_config,
        shared=before.shared,
        env=env,
        description="Stream-quality monitor, 'after' architecture (one process per stream set on ECS)",
    )
    # The critics' design (segments -> queue -> one Lambda decoding and detecting in memory) reuses the
    # before's resources likewise.
    serverless = StreamQualityServerlessStack(
        app, serverless_stack_name(config.stage),
        config=config,
        settings=segment_settings(config),
        shared=before.shared,
        env=env,
        description="Stream-quality monitor, event-driven serverless design (one Lambda per live segment)",
    )
    # cdk-nag v3: findings go to cdk.out/policy-validation-report.json and fail the synth;
    # acknowledgements (each with a reason) sit next to the constructs they concern.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Stacks(app, before, after, serverless)


def build_app(context: dict | None = None) -> tuple[cdk.App, StreamQualityStack]:
    stacks = build_stacks(context)
    return stacks.app, stacks.before


def main() -> int:
    try:
        stacks = build_stacks()
    except ValueError as error:  # a context value the stacks refuse (their configs say which and why)
        print(f"error: {error}", file=sys.stderr)
        return 2
    stacks.app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
