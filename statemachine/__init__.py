"""The before's workflow: its Amazon States Language definition (`stream_quality.asl.json`, the single
source of truth) and the code that reads it (`asl`).

The stack (infra/) deploys the definition and bounds its execution history with it; the cost model
(cost_model/) counts the state transitions it bills. Both import it from here, the floor below them.
Side-effect free: json and the standard library only.
"""

from __future__ import annotations

from pathlib import Path

ASL_PATH = Path(__file__).resolve().parent / "stream_quality.asl.json"
# The definition's placeholders for the Lambda ARNs: the converter's, and each detector's in its Parallel
# branch. The stack substitutes them (infra/workflow.py); the cost model counts by them.
CONVERTER_PLACEHOLDER = "ConverterFunctionArn"
DETECTOR_PLACEHOLDERS = {
    "freeze": "FreezeFunctionArn",
    "block_corruption": "BlockCorruptionFunctionArn",
    "av_sync": "AvSyncFunctionArn",
}
