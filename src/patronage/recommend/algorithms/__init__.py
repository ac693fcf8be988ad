"""Recommendation models (estimator contract) and the item tables they build."""
