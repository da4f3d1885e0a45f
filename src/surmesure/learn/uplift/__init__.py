"""Uplift modelling: who is moved by a treatment, how well a score ranks them, whom to treat.

Pure numerics on arrays (NumPy, scikit-learn); :mod:`.data` is the one module that reads a file.
"""

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

__all__ = [
    "Curve",
    "DRLearner",
    "PolicyProfit",
    "SLearner",
    "Split",
    "TLearner",
    "UpliftLearner",
    "UpliftReport",
    "UpliftScores",
    "XLearner",
    "auuc",
    "fit_and_evaluate",
    "make_learner",
    "perfect_score",
    "policy_profit",
    "qini_coefficient",
    "qini_curve",
    "score_uplift",
    "stratified_split",
    "treat",
    "uplift_curve",
]
