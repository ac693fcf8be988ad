"""Customer lifetime value: BG/NBD purchases and churn risk, Gamma-Gamma spend, CLV.

Models follow the estimator contract (DESIGN.md); docs/models/clv.md has the equations, the
CDNOW check against the published parameters, and the failure modes handled.
"""

from patronage.analytics.clv._checks import ModelNotReady
from patronage.analytics.clv.bgnbd import BetaGeoFitter
from patronage.analytics.clv.gamma_gamma import GammaGammaFitter
from patronage.analytics.clv.holdout import FrequencyBucket, HoldoutReport, calibration_holdout
from patronage.analytics.clv.persistence import dumps, load, loads, save
from patronage.analytics.clv.scoring import CLVScores, score_customers
from patronage.analytics.clv.summary import RFMSummary, summarize_transactions

__all__ = [
    "BetaGeoFitter",
    "CLVScores",
    "FrequencyBucket",
    "GammaGammaFitter",
    "HoldoutReport",
    "ModelNotReady",
    "RFMSummary",
    "calibration_holdout",
    "dumps",
    "load",
    "loads",
    "save",
    "score_customers",
    "summarize_transactions",
]
