"""The defects topic and what listens to it: the corrective-action function, optionally an e-mail address;
and where a corrective action that fails goes, with an alarm on it.

SNS invokes the corrective action asynchronously. Two things can go wrong, and each has its own catcher;
both put the message in one queue, `CorrectiveActionFailures`:
- SNS cannot hand the message to Lambda at all (function deleted, permission lost): the subscription's
  redrive policy. Lambda never sees these, so no setting on the function could catch them.
- The function fails on every attempt (Lambda's 2 retries): the function's on-failure destination. It is
  chosen over the function's dead-letter queue because its record carries the error (type, message,
  stack trace), the condition (RetriesExhausted, EventAgeExceeded) and the attempt count beside the SNS
  event; a dead-letter queue only gets the event.
An alarm fires on the first message in that queue and notifies the alarms topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.checkov import SQS_MANAGED_SSE_SKIP, skip_check
from infra.config import MonitorConfig
from infra.functions import removal_policy
from infra.nag import acknowledge

FAILURE_RETENTION = Duration.days(14)  # SQS's maximum: time for someone to replay a lost action
ASYNC_RETRIES = 2  # Lambda's default and maximum, stated so that the template says it


class Notifications(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: MonitorConfig,
        corrective_action: lambda_.IFunction,
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
        self.failures = sqs.Queue(
            self, "CorrectiveActionFailures",
            retention_period=FAILURE_RETENTION,
            # SQS-managed keys: SNS can deliver to such a queue (not to one under the AWS managed KMS key).
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy(config),
        )
        acknowledge(self.failures, "AwsSolutions-SQS3",
                    "This queue is itself where failed corrective actions end up; a queue behind it would "
                    "only move the same records once more.")
        skip_check(self.failures, *SQS_MANAGED_SSE_SKIP)
        # One message per defect event reaches the corrective action; "stream unreadable" notices only
        # go to people (the e-mail subscription gets everything).
        self.topic.add_subscription(subscriptions.LambdaSubscription(
            corrective_action,
            filter_policy={"kind": sns.SubscriptionFilter.string_filter(allowlist=["defect"])},
            dead_letter_queue=self.failures,
        ))
        corrective_action.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failures), retry_attempts=ASYNC_RETRIES)
        skip_check(corrective_action, "CKV_AWS_116",
                   "Failed asynchronous invocations go to an on-failure destination (the "
                   "CorrectiveActionFailures queue), which records the error with the event; a "
                   "dead-letter queue would hold the event alone.")

        # CloudWatch cannot publish to a topic under the AWS managed SNS key, so alarms get a topic of
        # their own: its messages name an alarm, a metric and a threshold, nothing from the streams.
        self.alarms = sns.Topic(self, "Alarms", display_name=f"Stream quality alarms ({config.stage})",
                                enforce_ssl=True)
        acknowledge(self.alarms, "AwsSolutions-SNS2",
                    "CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key; the "
                    "messages hold only alarm names and metric values, which a customer key would not "
                    "protect any better.")
        skip_check(self.alarms, "CKV_AWS_26",
                   "CloudWatch alarms cannot publish to a topic under the AWS managed SNS key; alarm "
                   "messages hold only alarm names and metric values.")
        self.failure_alarm = cloudwatch.Alarm(
            self, "CorrectiveActionFailed",
            alarm_description="A corrective action failed after Lambda's retries, or SNS could not deliver "
                              "it: its record waits in the CorrectiveActionFailures queue.",
            metric=self.failures.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # An idle queue publishes no metric: that is "no failure", not "unknown".
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failure_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarms))
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))
            self.alarms.add_subscription(subscriptions.EmailSubscription(config.notification_email))
