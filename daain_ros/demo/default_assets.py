# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Where the package's embedded defaults live, so ``make demo`` and the tests need no downloads.

The default segmentation model is a small ESPNet trained by ``daain train-default`` on generated street
scenes (``daain_ros.io.synthetic``); its JSON records the command, seed and held-out mIoU.
"""

import json
from pathlib import Path

from daain_ros.errors import CheckpointError

DEFAULT_DIR = Path(__file__).resolve().parent / "default"
MODEL_FILE = "espnet_default.safetensors"
INFO_FILE = "espnet_default.json"


def default_model_path():
    """Path of the packaged default ESPNet (safetensors); a clear error when the package lacks it."""
    path = DEFAULT_DIR / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: the packaged default model is missing "
                              "(reinstall the package, or recreate it with 'daain train-default')")
    return path


def default_model_info():
    """The default model's record: command, seed, p, q, size, training summary, held-out IoU per class."""
    path = DEFAULT_DIR / INFO_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: the packaged default model's record is missing")
    return json.loads(path.read_text())
