"""The learned part of the block-corruption detector: a logistic regression over per-picture features.

Issue 22: the decision whether a picture shows new block damage is learned from the damage corpus's
tuning sources (`make train` = `python -m monolith train`, monolith/train_block_model.py), never from its
held-out ones. The model is a weight per feature over standardised features and a threshold on the
probability; its inference is plain numpy, so the Lambda path and the monolith run the very same code on
the very same numbers. The weights, with what they were trained on, are in `block_model.json` beside this
module (committed; packaged with the detectors).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PATH = Path(__file__).with_name("block_model.json")

# Per picture, in this order (lambdas.detectors.block_corruption.picture_features computes them).
FEATURES = (
    "decoder_flag",  # FFmpeg flagged the picture corrupt
    "decode_error",  # packets failed to decode right before it
    "dropped_after",  # the decoder took packets after it and gave out no picture
    "missing_pictures",  # pictures missing before it by the timestamps (a lost packet), at most 3
    "concealment",  # `concealment` (with the picture two back) where the cheap gates let it run, else 0
    "gained_seam_blocks",  # share of concealment blocks that gained seams on the 16-px grid
    "unexplained",  # share of blocks that follow no motion from the previous picture (coarse test)
    "unexplained_rise",  # ... above the clip's recent level of it
    "change_rise",  # log of the mean luma change from the previous picture over the clip's recent level
    "grid_energy_jump",  # rise of the steps across the 8-px grid over those beside it, from the last picture
    "grid_energy_rise",  # ... over the clip's recent level of it
)

# What is read from the pictures' content, not from the decoder or the timestamps: a picture that moves
# after a repeated one (a freeze ending) jumped in time, so these look like damage there.
CONTENT_FEATURES = FEATURES[FEATURES.index("concealment"):]

# What the detector measures only for a model that reads one of them: the coarse motion test on every
# picture, the luma change and the grid energy, and the clip's levels of them carried in the state.
MOTION_FEATURES = FEATURES[FEATURES.index("unexplained"):]


class ModelError(ValueError):
    """The model file is missing or does not describe a model over `FEATURES`."""


@dataclass(frozen=True)
class LogisticModel:
    features: tuple[str, ...]
    mean: np.ndarray  # (features,) subtracted from each feature ...
    scale: np.ndarray  # (features,) ... which is then divided by this
    weights: np.ndarray  # (features,)
    bias: float
    threshold: float  # a picture scoring at least this shows new damage

    def reads_any(self, names: tuple[str, ...]) -> bool:
        """Does any of these features weigh in the decision?"""
        return any(self.weights[self.features.index(name)] != 0 for name in names)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(pictures,) the log-odds of new damage for a (pictures, features) matrix."""
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(pictures,) the probability of new damage, in [0, 1]."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.logits(features)))  # 1 / (1 + e^-z), never overflows

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic regression",
            "features": list(self.features),
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "weights": [round(float(v), 8) for v in self.weights],
            "bias": round(float(self.bias), 8),
            "threshold": round(float(self.threshold), 8),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogisticModel:
        try:
            features = tuple(data["features"])
            arrays = [np.asarray(data[key], dtype=np.float64) for key in ("mean", "scale", "weights")]
            bias, threshold = float(data["bias"]), float(data["threshold"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"not a block-damage model: {error!r}") from None
        if features != FEATURES:
            raise ModelError(f"the model's features {features} are not the detector's {FEATURES}: "
                             "retrain it (make train)")
        if any(a.shape != (len(FEATURES),) for a in arrays) or not np.all(arrays[1] > 0):
            raise ModelError("the model's mean, scale and weights need one value per feature, scales > 0")
        return cls(features, *arrays, bias, threshold)


@lru_cache(maxsize=1)
def committed_model() -> LogisticModel:
    """The committed model (read once per process)."""
    try:
        data = json.loads(MODEL_PATH.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"{MODEL_PATH}: cannot read the block-damage model ({error}): make train") from None
    return LogisticModel.from_dict(data["model"])
