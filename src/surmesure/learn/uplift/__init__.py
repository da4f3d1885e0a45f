"""Uplift modelling: who is moved by a treatment, how well a score ranks them, whom to treat.

Pure numerics on arrays (NumPy, scikit-learn); :mod:`.data` is the one module that reads a file.
"""

from surmesure.learn.uplift.actions import Action, Choice, next_best_action, policy_value
from surmesure.learn.uplift.evaluate import (
    Split,
    UpliftReport,
    fit_and_evaluate,
    stratified_split,
)
from surmesure.learn.uplift.learners import (
    DRLearner,
    SLearner,
    TLearner,
    UpliftLearner,
    XLearner,
    make_learner,
)
from surmesure.learn.uplift.metrics import (
    Curve,
    UpliftScores,
    auuc,
    perfect_score,
    qini_coefficient,
    qini_curve,
    score_uplift,
    uplift_curve,
)
from surmesure.learn.uplift.policy import PolicyProfit, policy_profit, treat
from surmesure.learn.uplift.targeting import Interval, Targeting, TargetingRow, targeting_value

__all__ = [
    "Action",
    "Choice",
    "Curve",
    "DRLearner",
    "Interval",
    "PolicyProfit",
    "SLearner",
    "Split",
    "TLearner",
    "Targeting",
    "TargetingRow",
    "UpliftLearner",
    "UpliftReport",
    "UpliftScores",
    "XLearner",
    "auuc",
    "fit_and_evaluate",
    "make_learner",
    "next_best_action",
    "perfect_score",
    "policy_profit",
    "policy_value",
    "qini_coefficient",
    "qini_curve",
    "score_uplift",
    "stratified_split",
    "targeting_value",
    "treat",
    "uplift_curve",
]
