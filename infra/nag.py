"""cdk-nag v3 acknowledgements that depend on synthesized names (bucket logical ids in finding ids)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct


def object_arn_finding(bucket: s3.IBucket, pattern: str, scope: IConstruct | None = None) -> str:
    """How cdk-nag spells `bucket.arn_for_objects(pattern)` in an IAM5 finding id (in `scope`'s stack)."""
    owner = Stack.of(bucket)
    resolved = owner.resolve(bucket.bucket_arn)
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved and scope is not None \
            and Stack.of(scope) is not owner:
        # Another stack sees the bucket's ARN through the export CDK makes for the reference; export_value
        # gives that same export (same name), so the finding names it as cdk-nag will. (An imported
        # bucket's ARN is built from its name in each stack: no export.)
        resolved = owner.resolve(owner.export_value(bucket.bucket_arn))
    if isinstance(resolved, dict) and "Fn::ImportValue" in resolved:
        arn = str(resolved["Fn::ImportValue"])
    elif isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        logical_id, attribute = resolved["Fn::GetAtt"]
        arn = f"<{logical_id}.{attribute}>"
    elif isinstance(resolved, dict) and "Fn::Join" in resolved:  # imported bucket: arn:${Partition}:s3:::name
        parts = resolved["Fn::Join"][1]
        arn = "".join(p if isinstance(p, str) else f"<{next(iter(p.values()))}>" for p in parts)
    else:
        arn = str(resolved)
    return f"AwsSolutions-IAM5[Resource::{arn}/{pattern}]"


def acknowledge_object_prefix(scope: IConstruct, bucket: s3.IBucket, pattern: str, reason: str) -> None:
    acknowledge(scope, object_arn_finding(bucket, pattern, scope), reason)


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (`AwsSolutions-S1`, `AwsSolutions-IAM5[Resource::*]`) on scope.

    The `AwsSolutions::` plugin prefix is what the nag report asks for; without it CDK files the id
    under `Annotation::`.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule}", reason=reason))
