"""checkov suppressions: a check that does not apply to a resource, or a stated choice, with the reason.

checkov reads them from the resource's template metadata, `Metadata: {checkov: {skip: [{id, comment}]}}`,
so each suppression sits on the one resource it concerns and a new failure anywhere still breaks the
build (tests/infra/test_infra_checkov.py). The counterpart of infra/nag.py for cdk-nag.
"""

from __future__ import annotations

from aws_cdk import CfnResource
from constructs import IConstruct

# Checks suppressed on every Lambda function of the stacks, and why (functions.py applies them).
FUNCTION_SKIPS = {
    "CKV_AWS_117": "The function reaches only S3, SNS and X-Ray through their public endpoints; a VPC would "
                   "add NAT gateways or interface endpoints and nothing to guard inside it.",
    "CKV_AWS_115": "No reserved concurrency: each stream's execution runs one second at a time (the "
                   "converter, then its detectors), so concurrency follows the number of streams, which the "
                   "operator sets; a reserve would hold account capacity while idle and throttle a burst.",
    "CKV_AWS_173": "The environment holds bucket names and tuning knobs only, no secrets; Lambda encrypts it "
                   "at rest with its service key.",
}
LOG_GROUP_SKIP = ("CKV_AWS_158", "Log events hold stream ids, timings and errors, no secrets; CloudWatch "
                  "Logs encrypts them at rest with its service key, and a customer key would add a key and "
                  "its requests to the bill for no protection the stack needs.")

# A tool false positive: the check only looks for a KMS key and misses SQS-managed encryption.
SQS_MANAGED_SSE_SKIP = ("CKV_AWS_27", "Encrypted at rest with SQS-managed keys (SqsManagedSseEnabled), "
                        "which this check does not recognise: it only looks for a KMS key.")


def skip_check(scope: IConstruct, check_id: str, reason: str) -> None:
    """Suppress `check_id` on scope's CloudFormation resource (scope itself, or its default child)."""
    resource = scope if isinstance(scope, CfnResource) else scope.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to carry a checkov suppression")
    if not reason.strip():
        raise ValueError(f"{check_id} on {scope.node.path}: a suppression needs its reason")
    metadata = resource.get_metadata("checkov") or {}
    skips = [s for s in metadata.get("skip", []) if s["id"] != check_id]
    resource.add_metadata("checkov", {**metadata, "skip": [*skips, {"id": check_id, "comment": reason}]})
