# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Measuring the detector.

Anomalies (attacks, corruptions, adaptive attackers), baselines, metrics, the evaluation protocol, bag making and bag
replay, and their reports.
"""
