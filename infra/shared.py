"""What the before and the after have in common: one construct per capability, owned by the before stack.

The after stack receives these (CDK turns each use into a cross-stack reference, an export of the before
read with Fn::ImportValue); nothing flows back, so the after depends on the before and never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns


@dataclass(frozen=True)
class SharedResources:
    source_buckets: list[s3.IBucket]  # streams are read from these (the first is the demo's)
    results_bucket: s3.IBucket  # results/ (the Glue table's location) and actions/
    topic: sns.ITopic  # defects and "cannot be analysed" notices
    corrective_action: lambda_.IFunction  # subscribed to the topic: it reacts to either architecture
