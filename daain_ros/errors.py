# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Typed errors of the daain_ros core: each says what was given and what was expected.

The command line turns any of them into one line on stderr and exit code 2; the node turns them into a
fail-closed verdict.
"""


class DaainError(Exception):
    """Base class of every error the core raises on bad input."""


class CheckpointError(DaainError):
    """A segmentation checkpoint is missing, corrupt or not an ESPNet state dict."""


class DetectorFileError(DaainError):
    """A detector artifact is missing, corrupt, of an unknown version or fitted for other weights."""


class ImageError(DaainError):
    """An image cannot be decoded or has the wrong encoding, shape or size."""


class DataSourceError(DaainError):
    """A data source (folder, video, bag, Cityscapes tree) cannot be read as asked."""


class NotFittedError(DaainError):
    """A detector or baseline was asked to score before it was fitted."""


class ResultFileError(DaainError):
    """An input of ``daain report`` is not a result of ``daain evaluate``, ``daain bench`` or ``daain demo``."""


class FleetError(DaainError):
    """A fleet run cannot start or go on: no bags, no cluster, no worker, a fit shard that failed twice."""


def one_line(exc):
    """An exception's message on one line (its type name when it has none): for logs and CLI errors."""
    return " ".join(str(exc).split()) or type(exc).__name__
