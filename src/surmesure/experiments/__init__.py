"""Experiments in the store: definitions, recorded assignments and results.

The numerics live in :mod:`surmesure.learn`; this package reads and writes the store.
"""

from surmesure.experiments.assign import Assigned, assign
from surmesure.experiments.catalog import SavedExperiment, get, list_all, save, stop
from surmesure.experiments.definitions import ExperimentDefinition, load_file, parse
from surmesure.experiments.results import ExperimentResults, MetricResult, results

__all__ = [
    "Assigned",
    "ExperimentDefinition",
    "ExperimentResults",
    "MetricResult",
    "SavedExperiment",
    "assign",
    "get",
    "list_all",
    "load_file",
    "parse",
    "results",
    "save",
    "stop",
]
