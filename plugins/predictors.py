"""The learned predictors: `binary`, the GPS graph network with an antisymmetric pair head trained on
pairs (the discriminator of the paper), and `regression`, the same network predicting fitness rank and
comparing programs by predicted value (the paper's ablation). Options: see OnlineDiscriminator."""

from __future__ import annotations

from evolve import hookimpl
from evolve.discriminator.online import OnlineDiscriminator


class BinaryPredictor(OnlineDiscriminator):
    head = "pair"


class RegressionPredictor(OnlineDiscriminator):
    head = "value"


@hookimpl
def evolve_predictors():
    return {"binary": BinaryPredictor, "regression": RegressionPredictor}
