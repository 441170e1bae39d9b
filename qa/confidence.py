"""Confidence that an answer's first citation answers the question, and "not in this document".

Two logistic regressions over `qa.features` (standardised), each followed by a one-dimensional
calibration fitted on held-out folds (a Platt rescaling; for `hit`, an isotonic curve), so
that its probability is calibrated on documents the regression never saw:
- `hit`: the probability that the first citation answers the question (`Answer.confidence`);
- `answerable`: the probability that the index holds an answer at all. An answer is "not in
  this document" when it is below `threshold`.
Two, because they differ: on real conversations the right paragraph is often found while the
first quote misses the sentence (doc2dial Hit@1 0.3-0.4), and refusing all of those would
refuse answerable questions; refusal asks only whether the answer is there.

The parameters are plain JSON (qa/params/confidence.json), written by tools/fit_confidence.py
from the repository's eval data; nothing here imports scikit-learn. docs/ranking.md gives the
held-out figures and how the threshold was chosen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .features import NAMES

PARAMS = Path(__file__).with_name("params") / "confidence.json"
#: An answer found below this confidence is shown with a caution (qa/render.py `caution`): held out,
#: fewer than 1 in 5 first citations below it answer the question (tools/fit_confidence.py's
#: reliability table: 0.0-0.1 answer 3%, 0.1-0.2 answer 16%; 0.2-0.3 answer 23%).
LOW = 0.2


@dataclass(frozen=True)
class Head:
    """One calibrated logistic regression: its logit (standardised x . coef + intercept) mapped to
    a probability by `curve` (knots x -> probabilities y, interpolated) when there is one, else by
    sigmoid(platt_a * logit + platt_b)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    platt_a: float
    platt_b: float
    curve: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_json(cls, obj: dict) -> Head:
        curve = obj.get("curve")
        return cls(*(np.asarray(obj[k], dtype=np.float64) for k in ("mean", "scale", "coef")),
                   float(obj["intercept"]), float(obj["platt"][0]), float(obj["platt"][1]),
                   None if curve is None else (np.asarray(curve["x"], np.float64), np.asarray(curve["y"], np.float64)))

    def logit(self, x) -> float:
        z = (np.asarray(list(x), dtype=np.float64) - self.mean) / self.scale
        return float(z @ self.coef + self.intercept)

    def probability(self, x) -> float:
        z = self.logit(x)
        if self.curve is not None:
            return float(np.interp(z, *self.curve))
        return sigmoid(self.platt_a * z + self.platt_b)


@dataclass(frozen=True)
class Model:
    """`hit`: the probability that the first citation answers (`Answer.confidence`);
    `answerable`: the probability that the index holds an answer at all, refused below `threshold`
    for a question asked on its own or first, below `threshold_later` for one asked after others
    (each the operating point of its own kind of question: tools/fit_confidence.py)."""

    names: tuple[str, ...]
    hit: Head
    answerable: Head
    threshold: float
    threshold_later: float

    @classmethod
    def from_json(cls, obj: dict) -> Model:
        names = tuple(obj["features"])
        if names != NAMES:
            raise ValueError(f"confidence parameters were fitted on features {names}, the engine computes {NAMES}; "
                             "refit them with tools/fit_confidence.py")
        return cls(names, Head.from_json(obj["hit"]), Head.from_json(obj["answerable"]), float(obj["threshold"]),
                   float(obj.get("threshold_later", obj["threshold"])))


def sigmoid(v: float) -> float:
    return float(1.0 / (1.0 + np.exp(-v)))


@lru_cache(maxsize=4)
def load(path: Path = PARAMS) -> Model:
    with open(path, encoding="utf-8") as fh:
        return Model.from_json(json.load(fh))


@lru_cache(maxsize=4)
def _model(path: Path) -> Model | None:
    """The model at `path`, or None when there is no parameter file (read once, not per answer)."""
    return load(path) if path.exists() else None


def decide(features, later: bool = False, path: Path | None = None) -> tuple[bool, float | None]:
    """(found, confidence) for one answer's features; `later`: the question comes after others
    in a conversation (`path`: default PARAMS). Without a parameter file (before the first fit:
    tools/fit_confidence.py collects features that way) every answer is found and carries no
    confidence."""
    model = _model(PARAMS if path is None else path)
    if model is None:
        return True, None
    threshold = model.threshold_later if later else model.threshold
    return model.answerable.probability(features) >= threshold, model.hit.probability(features)
