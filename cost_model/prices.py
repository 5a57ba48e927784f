"""The dated price table (per region, each number with its source) and `--live-prices` (AWS Price List).

Unit prices are per single unit (one transition, one request, one GB-second, one GB-month, one hour).
A region lists only what differs from us-east-1 or was checked for it; anything it inherits says so in
its source, so nobody mistakes an assumed price for a checked one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

TABLE_DATE = "2026-11-26"
_FACTS = "read 2026-11-26"
SFN_PAGE = "https://aws.amazon.com/step-functions/pricing/"
_EC2_PAGE = "https://aws.amazon.com/ec2/pricing/on-demand/ (Linux, us-east-1)"
LAMBDA_MAP = (
    "AWS calculator metered-unit map lambda.json, as transcribed in https://github.com/remotion-dev/remotion "
    "packages/lambda/src/pricing/price-per-1-s.ts"
)


@dataclass(frozen=True)
class Price:
    usd: float  # per one `unit`
    unit: str
    source: str
    date: str = TABLE_DATE


@dataclass(frozen=True)
class Tier:
    """A volume tier: applies to the quantity between `start` and `end` (None = no upper end)."""

    start: float
    end: float | None
    price: Price


GB_S_PER_GB_H = 3600.0
AFTER_DATE = "2026-12-02"  # when the after's prices below were read
XRAY_DATE = "2026-12-07"
_NAT_SRC = "https://basavytix.com/blog/aws-nat-gateway-pricing (us-east-1 $0.045/h and $0.045/GB)"

HOURS_PER_MONTH = 730.0  # AWS's convention for a month of 24x7 (the pricing pages' monthly examples)
SOURCES = "cost_model/SOURCES.md"  # the facts below with their public sources and dates

# How the after's instances are bought. Reserved Instances (No Upfront, 1 or 3 years, Standard or
# Convertible) are priced from AWS's published rates (RESERVED); Compute Savings Plans take the user's
# discount per term, since no c6i/c7g rate could be sourced and Reserved Instance rates are no stand-in
# (SOURCES.md, "Compute Savings Plans").
RESERVED_TERMS = ("ri-standard-1y", "ri-standard-3y", "ri-convertible-1y", "ri-convertible-3y")
SAVINGS_PLAN_TERMS = {"savings-1y": "1y", "savings-3y": "3y"}  # purchase -> the term of its --sp-discount-*
PURCHASES = ("on-demand", *RESERVED_TERMS, *SAVINGS_PLAN_TERMS)
PURCHASE_HELP = {
    "on-demand": "EC2 on demand",
    "ri-standard-1y": "Standard Reserved Instance, 1 year, No Upfront (AWS's published rate)",
    "ri-standard-3y": "Standard Reserved Instance, 3 years, No Upfront (AWS's published rate)",
    "ri-convertible-1y": "Convertible Reserved Instance, 1 year, No Upfront (AWS's published rate)",
    "ri-convertible-3y": "Convertible Reserved Instance, 3 years, No Upfront (AWS's published rate)",
    "savings-1y": "Compute Savings Plan, 1 year, No Upfront, at your --sp-discount-1y",
    "savings-3y": "Compute Savings Plan, 3 years, No Upfront, at your --sp-discount-3y",
}
_RI_SRC = (
    "AWS EC2 pricing-page data (us-east-1, Linux, shared tenancy, No Upfront; published 2025-04-04) as "
    "copied in https://github.com/yeo/ec2.shop at 73696e380ae600b175f859850a726edebd1de72f, "
    "data/ec2/us-east-1-reservedinstance{,-convertible}-{1y,3y}.json; " + SOURCES
)
RI_DATE = "2025-04-04"  # AWS's publication date of the rates
# Dollars per instance-hour, (Standard 1y, Standard 3y, Convertible 1y, Convertible 3y).
RESERVED: dict[str, tuple[float, float, float, float]] = {
    "c6i.2xlarge": (0.22491, 0.14969, 0.2457, 0.16416),
    "c7g.2xlarge": (0.1911, 0.1274, 0.2079, 0.1404),
}


class PurchaseUnavailable(ValueError):
    """No rate for this purchase option: none sourced for the instance, or none given by the user."""


# Graviton (c7g) against Intel (c6i) for this kind of work: AWS measured FFmpeg H.264 *encoding* on C7g at
# 29% lower cost than on C6i at on-demand prices (AWS Open Source Blog, "Optimized Video Encoding with FFmpeg
# on AWS Graviton Processors", 2022-11-15,
# https://aws.amazon.com/blogs/opensource/optimized-video-encoding-with-ffmpeg-on-aws-graviton-processors/,
# read 2026-12-02). With c7g.2xlarge at $0.29/h and c6i.2xlarge at $0.34/h that is 0.71 x 0.34 / 0.29 = 0.83
# of the c6i's CPU time for the same work. Our work is decoding plus numpy, not encoding, and could not be
# measured on arm64 here: an encoding benchmark's ratio, not a measurement of ours.
ARM64_CPU_FACTOR = round(0.71 * 0.34 / 0.29, 3)
ARM64_CPU_SOURCE = (
    f"from an ENCODING benchmark, not a measurement of our decoding: AWS Open Source Blog 2022-11-15, FFmpeg "
    f"H.264 encoding on C7g 29% cheaper than on C6i at on-demand prices -> {ARM64_CPU_FACTOR} x the c6i's "
    f"CPU time ({SOURCES})"
)

# us-east-1: the reference region; every number here is in SOURCES.md or on the cited page.
US_EAST_1: dict[str, Price] = {
    "sfn.transition": Price(0.025 / 1000, "state transition", f"{SFN_PAGE}; {_FACTS}"),
    "sfn.express.request": Price(1.00 / 1e6, "request", f"{SFN_PAGE}; {_FACTS}"),
    "sfn.express.gb_s.1": Price(0.00001667, "GB-second", f"{SFN_PAGE} (first 1,000 GB-hours); {_FACTS}"),
    "sfn.express.gb_s.2": Price(0.00000833, "GB-second", f"{SFN_PAGE} (next 4,000 GB-hours)"),
    "sfn.express.gb_s.3": Price(0.00000456, "GB-second", f"{SFN_PAGE} (over 5,000 GB-hours)"),
    "lambda.request": Price(0.20 / 1e6, "request", f"https://aws.amazon.com/lambda/pricing; {_FACTS}"),
    "lambda.gb_s.x86_64.1": Price(0.0000166667, "GB-second", f"{LAMBDA_MAP}; {_FACTS} (first 6B GB-s/month)"),
    "lambda.gb_s.x86_64.2": Price(
        0.000015,
        "GB-second",
        "https://aws.amazon.com/blogs/compute/ Lambda tiered pricing (2022): -10% for 6B-15B GB-s/month; "
        + _FACTS,
    ),
    "lambda.gb_s.x86_64.3": Price(
        0.0000133334,
        "GB-second",
        "https://aws.amazon.com/blogs/compute/ Lambda tiered pricing (2022): -20% above 15B GB-s/month; "
        + _FACTS,
    ),
    "lambda.gb_s.arm64.1": Price(
        0.0000133334, "GB-second", f"{LAMBDA_MAP}; {_FACTS} (first 7.5B GB-s/month)"
    ),
    "lambda.gb_s.arm64.2": Price(
        0.0000120001,
        "GB-second",
        "https://aws.amazon.com/blogs/compute/ Lambda tiered pricing (2022): Arm -10% for 7.5B-18.75B "
        "GB-s/month",
    ),
    "lambda.gb_s.arm64.3": Price(
        0.0000106667,
        "GB-second",
        "https://aws.amazon.com/blogs/compute/ Lambda tiered pricing (2022): Arm -20% above 18.75B "
        "GB-s/month",
    ),
    "s3.put": Price(
        0.005 / 1000,
        "PUT request",
        f"https://aws.amazon.com/s3/pricing (S3 Standard PUT/COPY/POST/LIST); {_FACTS}",
    ),
    "s3.get": Price(
        0.0004 / 1000, "GET request", f"https://aws.amazon.com/s3/pricing (S3 Standard GET/HEAD); {_FACTS}"
    ),
    "s3.gb_month.1": Price(
        0.023, "GB-month", f"https://aws.amazon.com/s3/pricing (S3 Standard, first 50 TB); {_FACTS}"
    ),
    "s3.gb_month.2": Price(0.022, "GB-month", "https://aws.amazon.com/s3/pricing (S3 Standard, next 450 TB)"),
    "s3.gb_month.3": Price(0.021, "GB-month", "https://aws.amazon.com/s3/pricing (S3 Standard, over 500 TB)"),
    "sns.publish": Price(0.50 / 1e6, "publish", f"https://aws.amazon.com/sns/pricing; {_FACTS}"),
    "sqs.request": Price(
        0.40 / 1e6,
        "request",
        "https://aws.amazon.com/sqs/pricing (Standard queue, first 100B requests/month, each 64 KiB chunk "
        "one "
        "request; read via cloudburn.io/blog/amazon-sqs-pricing, 2026-03, on 2026-12-02)",
        "2026-12-02",
    ),
    "logs.ingest_gb": Price(
        0.50, "GB ingested", f"https://aws.amazon.com/cloudwatch/pricing (first tier); {_FACTS}"
    ),
    "ec2.c6i.large": Price(0.085, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c6i.xlarge": Price(0.17, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c6i.2xlarge": Price(0.34, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c6i.4xlarge": Price(0.68, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c5.2xlarge": Price(
        0.34,
        "instance-hour",
        "https://docs.aws.amazon.com/autoscaling/ example table (on-demand c5.2xlarge $0.34, us-east-1); "
        + _FACTS,
    ),
    "ec2.c5.4xlarge": Price(
        0.68,
        "instance-hour",
        "https://docs.aws.amazon.com/autoscaling/ example table (on-demand c5.4xlarge $0.68, us-east-1); "
        + _FACTS,
    ),
    "ec2.c7g.large": Price(0.0725, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c7g.xlarge": Price(0.145, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c7g.2xlarge": Price(0.29, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    "ec2.c7g.4xlarge": Price(0.58, "instance-hour", f"{_EC2_PAGE}; {_FACTS}"),
    # --- the after's own lines (read 2026-12-02) ---
    "vpc.nat.hour": Price(
        0.045, "NAT gateway-hour", f"https://aws.amazon.com/vpc/pricing; {_NAT_SRC}", AFTER_DATE
    ),
    "vpc.nat.gb": Price(0.045, "GB processed", f"https://aws.amazon.com/vpc/pricing; {_NAT_SRC}", AFTER_DATE),
    "vpc.endpoint.hour": Price(
        0.01,
        "interface endpoint-hour per AZ",
        "https://aws.amazon.com/privatelink/pricing; https://egresscost.com/nat-gateway ($7.20/AZ-month)",
        AFTER_DATE,
    ),
    "vpc.endpoint.gb": Price(
        0.01,
        "GB processed",
        "https://aws.amazon.com/privatelink/pricing (first PB); https://egresscost.com/nat-gateway",
        AFTER_DATE,
    ),
    "vpc.ipv4.hour": Price(
        0.005,
        "public IPv4 address-hour",
        "https://aws.amazon.com/vpc/pricing (public IPv4 addresses, since 2024-02-01); "
        "https://cloudburn.io/blog/aws-nat-gateway-pricing (2026-02-24)",
        AFTER_DATE,
    ),
    "ebs.gp3.gb_month": Price(
        0.08,
        "GB-month",
        "https://aws.amazon.com/ebs/pricing (gp3, us-east-1; not re-read, verify)",
        AFTER_DATE,
    ),
    "ecr.gb_month": Price(
        0.10,
        "GB-month",
        "https://aws.amazon.com/ecr/pricing (private storage; same-region pulls free); "
        "https://cloudburn.io/blog/amazon-ecr-pricing (2026-03)",
        AFTER_DATE,
    ),
    "events.s3_event": Price(
        1.00 / 1e6,
        "event",
        "https://aws.amazon.com/eventbridge/pricing/ (S3's object events are 'AWS opt-in data events', "
        "billed per event ingested by the bus; the page read on 2026-12-07 gave no separate rate in the "
        "excerpt, so the custom-event rate of $1.00 per 1M is used, as the pricing guides of "
        "blog.awsfundamentals.com and factualminds.com (2026-06) give it); " + SOURCES,
        "2026-12-07",
    ),
    "xray.trace": Price(
        5.00 / 1e6,
        "trace recorded",
        f"https://aws.amazon.com/xray/pricing/ ($5.00 per 1M traces recorded); {SOURCES}",
        XRAY_DATE,
    ),
}
# The Reserved Instance rates, as prices of their own (`prices` lists them with their source and date).
US_EAST_1 |= {
    f"ec2.{instance}.{purchase}": Price(usd, "instance-hour", _RI_SRC, RI_DATE)
    for instance, rates in RESERVED.items()
    for purchase, usd in zip(RESERVED_TERMS, rates, strict=True)
}

# Tier boundaries in the unit of the price (GB-seconds, GB-months).
TIERS: dict[str, list[tuple[float, float | None]]] = {
    "sfn.express.gb_s": [
        (0, 1000 * GB_S_PER_GB_H),
        (1000 * GB_S_PER_GB_H, 5000 * GB_S_PER_GB_H),
        (5000 * GB_S_PER_GB_H, None),
    ],
    "lambda.gb_s.x86_64": [(0, 6e9), (6e9, 15e9), (15e9, None)],
    "lambda.gb_s.arm64": [(0, 7.5e9), (7.5e9, 18.75e9), (18.75e9, None)],
    "s3.gb_month": [(0, 50 * 1024), (50 * 1024, 500 * 1024), (500 * 1024, None)],
}

FREE_TIER: dict[str, tuple[float, str]] = {
    "sfn.transition": (4000, f"{SFN_PAGE}: 4,000 state transitions/month, does not expire"),
    "lambda.request": (1e6, "https://aws.amazon.com/lambda/pricing: 1M requests/month"),
    "lambda.gb_s": (400_000, "https://aws.amazon.com/lambda/pricing: 400,000 GB-seconds/month"),
    "sns.publish": (1e6, "https://aws.amazon.com/sns/pricing: first 1M publishes/month"),
    "xray.trace": (100_000, "https://aws.amazon.com/xray/pricing/: first 100,000 traces recorded/month"),
}


@dataclass(frozen=True)
class Region:
    name: str
    state_transition_refill_per_s: int
    state_transition_bucket: int
    overrides: dict[str, Price]


QUOTA_SOURCE = (
    "https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, StateTransition (archived "
    "copy; new accounts may get less); " + _FACTS
)


def _sfn(per_thousand: float) -> Price:
    return Price(per_thousand / 1000, "state transition", f"{SFN_PAGE} (regional table)")


def _lambda_same(region: str) -> dict[str, Price]:
    """The calculator's map lists the same x86/Arm duration and request prices as us-east-1 for these."""
    src = f"{LAMBDA_MAP} ({region}: same as us-east-1)"
    return {
        key: replace(US_EAST_1[key], source=src)
        for key in ("lambda.request", "lambda.gb_s.x86_64.1", "lambda.gb_s.arm64.1")
    }


REGIONS: dict[str, Region] = {
    "us-east-1": Region("us-east-1", 1500, 5000, {}),
    "us-west-2": Region(
        "us-west-2", 1500, 5000, {"sfn.transition": _sfn(0.025), **_lambda_same("us-west-2")}
    ),
    "eu-west-1": Region(
        "eu-west-1", 1500, 5000, {"sfn.transition": _sfn(0.025), **_lambda_same("eu-west-1")}
    ),
    "us-west-1": Region("us-west-1", 500, 800, {"sfn.transition": _sfn(0.0279)}),
    "eu-west-3": Region("eu-west-3", 500, 800, {"sfn.transition": _sfn(0.0297)}),
    "ap-south-1": Region(
        "ap-south-1", 500, 800, {"sfn.transition": _sfn(0.0285), **_lambda_same("ap-south-1")}
    ),
    "sa-east-1": Region("sa-east-1", 500, 800, {"sfn.transition": _sfn(0.0375)}),
}


class UnknownRegion(ValueError):
    pass


class PriceBook:
    """Prices for one region: the region's own numbers over us-east-1's (marked as inherited)."""

    def __init__(self, region: str, live: dict[str, Price] | None = None) -> None:
        if region not in REGIONS:
            raise UnknownRegion(f"unknown region {region!r}; known: {', '.join(REGIONS)}")
        self.region = REGIONS[region]
        self.live = live or {}

    def __getitem__(self, key: str) -> Price:
        if key in self.live:
            return self.live[key]
        if key in self.region.overrides:
            return self.region.overrides[key]
        if key not in US_EAST_1:
            raise KeyError(key)
        base = US_EAST_1[key]
        if self.region.name == "us-east-1":
            return base
        return replace(
            base,
            source=f"us-east-1 price, NOT verified for {self.region.name} (use --live-prices): {base.source}",
        )

    def __contains__(self, key: str) -> bool:
        return key in US_EAST_1 or key in self.live

    def tiers(self, family: str) -> list[Tier]:
        return [Tier(start, end, self[f"{family}.{i}"]) for i, (start, end) in enumerate(TIERS[family], 1)]

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "key": key,
                "usd": self[key].usd,
                "unit": self[key].unit,
                "date": self[key].date,
                "source": self[key].source,
            }
            for key in US_EAST_1
        ]


def instance_rate(
    book: PriceBook, instance: str, purchase: str, sp_discounts: dict[str, float | None]
) -> tuple[float, str]:
    """(dollars per instance-hour, source) of `instance` bought as `purchase`. `sp_discounts` holds the
    user's Compute Savings Plan discount per term ("1y", "3y"; None: not given). Raises PurchaseUnavailable
    with a sentence saying why when no rate is sourced or given."""
    on_demand = book[f"ec2.{instance}"]
    if purchase == "on-demand":
        return on_demand.usd, f"{on_demand.source} [{on_demand.date}]"
    if purchase in RESERVED_TERMS:
        key = f"ec2.{instance}.{purchase}"
        if key not in book:
            raise PurchaseUnavailable(
                f"no sourced {purchase} rate for {instance} (sourced: {', '.join(RESERVED)}; {SOURCES})"
            )
        price = book[key]
        return price.usd, f"{price.source} [{price.date}]"
    if purchase in SAVINGS_PLAN_TERMS:
        term = SAVINGS_PLAN_TERMS[purchase]
        discount = sp_discounts.get(term)
        if discount is None:
            raise PurchaseUnavailable(
                f"{purchase}: no Compute Savings Plan rate given (--sp-discount-{term}); none is assumed, "
                f"since no c6i/c7g rate could be sourced ({SOURCES})"
            )
        return on_demand.usd * (1 - discount), (
            f"{on_demand.source} [{on_demand.date}] x (1 - {discount:g}): your {term} Compute Savings Plan "
            f"discount (--sp-discount-{term})"
        )
    raise PurchaseUnavailable(f"unknown purchase option {purchase!r}; use {', '.join(PURCHASES)}")


# --- the AWS Price List API ------------------------------------------------------------------------
class LivePricesUnavailable(RuntimeError):
    """The Price List API cannot be read (no credentials, no network, access denied)."""


# key -> (service code, filters); the first on-demand price dimension with beginRange 0 is taken.
LIVE_QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "sfn.transition": ("AmazonStates", {"usagetype": "StateTransition"}),
    "lambda.request": ("AWSLambda", {"group": "AWS-Lambda-Requests"}),
    "lambda.gb_s.x86_64.1": ("AWSLambda", {"group": "AWS-Lambda-Duration"}),
    "lambda.gb_s.arm64.1": ("AWSLambda", {"group": "AWS-Lambda-Duration-ARM"}),
    "s3.put": ("AmazonS3", {"group": "S3-API-Tier1", "volumeType": "Standard"}),
    "s3.get": ("AmazonS3", {"group": "S3-API-Tier2", "volumeType": "Standard"}),
    "sns.publish": ("AmazonSNS", {"group": "SNS-Requests-Tier1"}),
}


def live_prices(region: str, *, client: Any = None, instance_types: tuple[str, ...] = ()) -> dict[str, Price]:
    """Read current on-demand prices from the Price List API (its endpoint is in us-east-1). Raises
    LivePricesUnavailable with a sentence saying why, so the caller can fall back to the stored table."""
    if client is None:
        import boto3

        client = boto3.client("pricing", region_name="us-east-1")
    today = date.today().isoformat()
    queries = dict(LIVE_QUERIES)
    for itype in instance_types:
        queries[f"ec2.{itype}"] = (
            "AmazonEC2",
            {
                "instanceType": itype,
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
            },
        )
    found: dict[str, Price] = {}
    for key, (service, filters) in queries.items():
        terms = [
            {"Type": "TERM_MATCH", "Field": f, "Value": v}
            for f, v in {"regionCode": region, **filters}.items()
        ]
        try:
            response = client.get_products(ServiceCode=service, Filters=terms, MaxResults=20)
        except Exception as error:  # botocore raises many kinds; all mean the same to the user
            raise LivePricesUnavailable(_why(error)) from None
        usd = _first_on_demand_usd(response.get("PriceList", []))
        if usd is not None:
            found[key] = Price(
                usd,
                US_EAST_1[key].unit if key in US_EAST_1 else "instance-hour",
                f"AWS Price List API get_products({service}, {region})",
                today,
            )
    return found


def _why(error: Exception) -> str:
    name = type(error).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        reason = "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    elif name == "ClientError":
        reason = f"the Price List API refused the request ({error})"
    else:
        reason = f"the Price List API could not be reached ({name}: {error})"
    return f"cannot read live prices: {reason}; using the stored table dated {TABLE_DATE}"


def _first_on_demand_usd(price_list: list[Any]) -> float | None:
    for item in price_list:
        product = json.loads(item) if isinstance(item, str) else item
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                usd = float(dim.get("pricePerUnit", {}).get("USD", "0") or 0)
                if str(dim.get("beginRange", "0")) in ("0", "0.0") and usd > 0:
                    return usd
    return None
