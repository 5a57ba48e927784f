"""Test streams with known defects (freeze, block corruption, A/V offset) and their ground truth."""

from .api import generate_stream, inject_defects
from .defects import AvOffset, BlockCorruption, DefectSpec, Freeze
from .events import generate_event_stream
from .truth import AudioInfo, GroundTruth, VideoInfo, load_truth, truth_path

__all__ = [
    "AudioInfo",
    "AvOffset",
    "BlockCorruption",
    "DefectSpec",
    "Freeze",
    "GroundTruth",
    "VideoInfo",
    "generate_event_stream",
    "generate_stream",
    "inject_defects",
    "load_truth",
    "truth_path",
]
