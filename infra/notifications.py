"""The defects topic and what listens to it: the corrective-action function, optionally an e-mail address.
What SNS cannot deliver to the function, and what the function still fails after Lambda's retries, goes
to the stack's FailedInvocations queue (infra/failures.py)."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import MonitorConfig
from infra.failures import FailedInvocations


class Notifications(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig,
        corrective_action: lambda_.IFunction, failures: FailedInvocations,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self, "Defects",
            display_name=f"Stream quality defects ({config.stage})",
            enforce_ssl=True,
            # The AWS managed key: encrypted at rest at no key cost; its key policy lets principals of
            # this account publish through SNS, so the publishers need no KMS statements.
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
        )
        # One message per defect event reaches the corrective action; "stream unreadable" notices only
        # go to people (the e-mail subscription gets everything).
        self.topic.add_subscription(subscriptions.LambdaSubscription(
            corrective_action,
            filter_policy={"kind": sns.SubscriptionFilter.string_filter(allowlist=["defect"])},
            dead_letter_queue=failures.queue,
        ))
        failures.catch_failures_of(corrective_action)
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))
