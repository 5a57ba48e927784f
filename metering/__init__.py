"""Metering: turns what a run did into one bill, for either architecture.

- `stepfunctions`: execution histories → billed state transitions, the workflow's service calls, the S3
  requests the Lambdas reported;
- `lambda_logs`: the runtime's REPORT lines → invocations, billed GB-seconds, CPU time;
- `requests`: S3/SQS/SNS request counters (botocore hooks in the code that made them) → billing classes;
- `bill`: the `Bill` both architectures share, built from those.

The demo, the LocalStack benchmark and `cost_model count` all read runs through here.
"""

from metering.bill import Bill, after_bill, before_bill

__all__ = ["Bill", "after_bill", "before_bill"]
