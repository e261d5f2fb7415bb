# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Fleet scale: many bags evaluated, and activations for a fit extracted, by Ray workers.

``daain fleet evaluate`` runs :func:`daain_ros.evaluation.bag_replay.evaluate_bag` on every bag with Ray
actors that each load the pipeline once (:mod:`daain_ros.fleet.evaluate`), judges each bag against
criteria (:mod:`daain_ros.fleet.criteria`) and writes the fleet report (:mod:`daain_ros.fleet.report`).
``daain fit --address`` extracts a fit's activations in parallel (:mod:`daain_ros.fleet.fit`) and trains
in one process with the core's :func:`daain_ros.detector.fit.fit_on_activations`.

This package and the CLI are the only importers of ``ray`` (an import-linter contract in setup.cfg); its
report, criteria and bag listing modules load without it, so ``daain report`` renders a fleet run anywhere.
"""
