"""Where an asynchronous invocation that fails ends up, and the alarm that says so.

Two functions are invoked asynchronously, so their failures cannot come back to a caller: the corrective
action (by SNS, infra/notifications.py) and the live starter (by EventBridge, infra/live_input.py). For
each, two things can go wrong, and both put the event in one queue, `FailedInvocations`:
- the service cannot hand the event to Lambda at all (function deleted, permission lost): the SNS
  subscription's redrive policy, the EventBridge target's dead-letter queue. Lambda never sees these, so
  no setting on the function could catch them;
- the function fails on every attempt (Lambda's 2 retries): the function's on-failure destination. It is
  chosen over the function's dead-letter queue because its record carries the error (type, message,
  stack trace), the condition (RetriesExhausted, EventAgeExceeded) and the attempt count beside the
  event; a dead-letter queue only gets the event.
An alarm fires on the first message in the queue and notifies the alarms topic.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
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

RETENTION = Duration.days(14)  # SQS's maximum: time for someone to replay what failed
ASYNC_RETRIES = 2  # Lambda's default and maximum, stated so that the template says it


class FailedInvocations(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: MonitorConfig) -> None:
        super().__init__(scope, construct_id)
        self.queue = sqs.Queue(
            self, "Queue",
            retention_period=RETENTION,
            # SQS-managed keys: SNS and EventBridge can deliver to such a queue (not to one under the AWS
            # managed KMS key).
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy(config),
        )
        acknowledge(self.queue, "AwsSolutions-SQS3",
                    "This queue is itself where failed asynchronous invocations end up; a queue behind it "
                    "would only move the same records once more.")
        skip_check(self.queue, *SQS_MANAGED_SSE_SKIP)

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
        if config.notification_email:
            self.alarms.add_subscription(subscriptions.EmailSubscription(config.notification_email))
        self.alarm = cloudwatch.Alarm(
            self, "Alarm",
            alarm_description="An asynchronous invocation (corrective action, live starter) failed after "
                              "Lambda's retries, or could not be delivered: its record waits in the "
                              "FailedInvocations queue.",
            metric=self.queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # An idle queue publishes no metric: that is "no failure", not "unknown".
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.alarms))

    def catch_failures_of(self, fn: lambda_.IFunction) -> None:
        """Send what `fn` still fails after Lambda's retries to the queue (its on-failure destination)."""
        fn.configure_async_invoke(on_failure=destinations.SqsDestination(self.queue),
                                  retry_attempts=ASYNC_RETRIES)
        skip_check(fn, "CKV_AWS_116",
                   "Failed asynchronous invocations go to an on-failure destination (the FailedInvocations "
                   "queue), which records the error with the event; a dead-letter queue would hold the "
                   "event alone.")
