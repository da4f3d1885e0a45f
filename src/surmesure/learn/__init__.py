"""The learn stage: assignment and experiment statistics, pure numerics (NumPy, SciPy).

Inputs are sufficient statistics (:class:`Moments`); results are frozen dataclasses.
"""

from surmesure.learn.analysis import Breakdown, ExperimentResult, analyze, as_dict, breakdown
from surmesure.learn.assignment import Experiment, Layer, bucket, buckets
from surmesure.learn.bayesian import BayesianResult, GaussianPrior, effect_posterior
from surmesure.learn.beta_binomial import BetaBinomialResult, beta_binomial
from surmesure.learn.frequentist import Comparison, Lift, compare
from surmesure.learn.moments import Covariate, Moments
from surmesure.learn.multiple import benjamini_hochberg
from surmesure.learn.power import minimum_detectable_effect, power, sample_size
from surmesure.learn.sequential import compare_sequential
from surmesure.learn.srm import SampleRatioCheck, sample_ratio_check

__all__ = [
    "BayesianResult",
    "BetaBinomialResult",
    "Breakdown",
    "Comparison",
    "Covariate",
    "Experiment",
    "ExperimentResult",
    "GaussianPrior",
    "Layer",
    "Lift",
    "Moments",
    "SampleRatioCheck",
    "analyze",
    "as_dict",
    "benjamini_hochberg",
    "beta_binomial",
    "breakdown",
    "bucket",
    "buckets",
    "compare",
    "compare_sequential",
    "effect_posterior",
    "minimum_detectable_effect",
    "power",
    "sample_ratio_check",
    "sample_size",
]
