"""Measuring the detector: anomalies (attacks, corruptions, adaptive attackers), baselines, metrics, the
evaluation protocol, bag making and bag replay, and their reports."""
