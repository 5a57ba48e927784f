#!/usr/bin/env python3
"""CDK app: the serverless "before" stream-quality monitor, checked by cdk-nag's AWS Solutions rules.

Configuration comes from CDK context (cdk.json, `-c key=value`): see infra/config.py.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import MonitorConfig
from infra.stack import StreamQualityStack


def build_app(context: dict | None = None) -> tuple[cdk.App, StreamQualityStack]:
    app = cdk.App(context=context)
    config = MonitorConfig.from_node(app.node)
    stack = StreamQualityStack(
        app, config.stack_name,
        config=config,
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                            region=config.region or os.environ.get("CDK_DEFAULT_REGION")),
        description="Stream-quality monitor, serverless 'before' architecture (a workflow per stream-second)",
    )
    # cdk-nag v3: findings go to cdk.out/policy-validation-report.json and fail the synth;
    # acknowledgements (each with a reason) sit next to the constructs they concern.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


if __name__ == "__main__":
    build_app()[0].synth()
