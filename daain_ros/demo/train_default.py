# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Training the package's small default ESPNet from scratch on generated streets (``daain train-default``).

The default model lets ``make demo`` and the tests run without the official Cityscapes checkpoints: it
is trained only on ``daain_ros.io.synthetic`` scenes, preprocessed exactly as the official model's input
(BGR, Cityscapes mean/std), so it is a drop-in ESPNet for everything that takes ``--model``. Training
frames and held-out frames come from disjoint seed streams; the held-out mIoU goes into the JSON.
"""

import json
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from daain_ros.demo.default_assets import INFO_FILE, MODEL_FILE
from daain_ros.errors import DaainError
from daain_ros.evaluation.metrics import miou
from daain_ros.io.synthetic import GENERATED_CLASSES, random_scene
from daain_ros.segmentation.cityscapes import CLASS_NAMES, UNLABELLED
from daain_ros.segmentation.espnet import NUM_CLASSES, ESPNet, save_espnet
from daain_ros.segmentation.network_size import check_network_size
from daain_ros.segmentation.preprocess import preprocess

_TRAIN, _HELDOUT = 1, 2  # first word of the seed entropy: training and held-out scenes never share a stream


@dataclass(frozen=True)
class TrainConfig:
    """What ``daain train-default`` trains: the defaults made the packaged model."""

    seed: int = 0
    frames: int = 640
    epochs: int = 5
    p: int = 2
    q: int = 3
    width: int = 512
    height: int = 256
    crop_width: int = 256
    batch: int = 8
    lr: float = 4e-3
    eval_frames: int = 60


def train_seed(seed, index):
    return [_TRAIN, seed, index]


def heldout_seed(index):
    """Seed of held-out scene ``index``: never drawn by training, whatever ``--seed`` was."""
    return [_HELDOUT, index]


def generate(seeds, size, desc):
    """Renders scenes: (N x H x W x 3 BGR uint8, N x H x W train ids)."""
    images, labels = zip(*(random_scene(s, size) for s in tqdm(seeds, desc=desc, unit="frame")))
    return np.stack(images), np.stack(labels)


def class_weights(labels, c=1.05):
    """ENet-style weights 1 / ln(c + frequency), mean 1 over the classes that occur; 0 for unlabelled."""
    counts = np.bincount(labels.ravel(), minlength=NUM_CLASSES).astype(np.float64)
    weights = 1.0 / np.log(c + counts / counts.sum())
    weights[counts == 0] = 0.0
    weights[UNLABELLED] = 0.0
    return torch.tensor(weights / weights[counts > 0].mean(), dtype=torch.float32)


def _batch(images, labels, index, crop, rng):
    """Random full-height crops, half of them mirrored, preprocessed like the official input."""
    width = images.shape[2]
    crops, targets = [], []
    for i in index:
        x0 = int(rng.integers(0, width - crop + 1)) // 8 * 8
        image, label = images[i, :, x0:x0 + crop], labels[i, :, x0:x0 + crop]
        if rng.random() < 0.5:
            image, label = image[:, ::-1], label[:, ::-1]
        crops.append(np.ascontiguousarray(image))
        targets.append(np.ascontiguousarray(label))
    x = preprocess(crops, (crop, images.shape[1])).contiguous(memory_format=torch.channels_last)
    return x, torch.from_numpy(np.stack(targets)).long()


def predict(net, images, batch=4):
    """Train-id maps of BGR uint8 images at their own (network) size."""
    net.eval()
    size = (images.shape[2], images.shape[1])
    with torch.inference_mode():
        return np.concatenate([net(preprocess(list(images[i:i + batch]), size)).argmax(1).byte().numpy()
                               for i in range(0, len(images), batch)])


def evaluate(net, n_frames, size):
    """Per-class IoU and mIoU on the first ``n_frames`` held-out scenes."""
    images, labels = generate([heldout_seed(i) for i in range(n_frames)], size, "held-out")
    return miou(predict(net, images), labels)


def train(config):
    """Trains an ESPNet from scratch as ``config`` says: (net, mean loss per epoch, seconds)."""
    size = check_network_size(config.width, config.height)
    crop = check_network_size(config.crop_width, config.height)[0]
    if crop > size[0] or config.epochs < 1 or not 1 <= config.batch <= config.frames:
        raise DaainError(f"crop width {crop}, width {size[0]}, frames {config.frames}, epochs {config.epochs}, "
                         f"batch {config.batch}: expected crop width <= width, epochs >= 1, 1 <= batch <= frames")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng([_TRAIN, config.seed, 1 << 20])
    images, labels = generate([train_seed(config.seed, i) for i in range(config.frames)], size, "generate")
    criterion = nn.CrossEntropyLoss(weight=class_weights(labels), ignore_index=UNLABELLED)
    net = ESPNet(NUM_CLASSES, config.p, config.q).to(memory_format=torch.channels_last)  # ~20 % faster on CPU
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=1e-5)
    steps = config.frames // config.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps,
                                                   pct_start=0.15)
    started = time.monotonic()
    net.train()
    losses = []
    for epoch in range(config.epochs):
        order = rng.permutation(config.frames)
        batches = (order[i * config.batch:(i + 1) * config.batch] for i in range(steps))
        progress = tqdm(batches, total=steps, desc=f"epoch {epoch + 1}/{config.epochs}", unit="step")
        losses.append(_epoch(net, criterion, optimizer, schedule,
                             (_batch(images, labels, index, crop, rng) for index in progress), progress))
    return net, losses, time.monotonic() - started


def _epoch(net, criterion, optimizer, schedule, batches, progress):
    """One pass of Adam steps over ``batches`` of (input, target); the mean loss."""
    total, count = 0.0, 0
    for x, y in batches:
        loss = criterion(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        total, count = total + loss.item(), count + 1
        progress.set_postfix(loss=f"{total / count:.3f}")
    return total / count


def train_default(config, out):
    """Trains, evaluates on held-out scenes and writes the model and its record into ``out``; a summary."""
    cpu_started = time.process_time()
    net, losses, seconds = train(config)
    cpu_seconds = time.process_time() - cpu_started
    size = (config.width, config.height)
    per_class, mean = evaluate(net, config.eval_frames, size)
    out.mkdir(parents=True, exist_ok=True)
    save_espnet(net, out / MODEL_FILE, config.p, config.q)
    info = {
        "command": command_line(config),
        "seed": config.seed, "p": config.p, "q": config.q, "classes": NUM_CLASSES, "size": list(size),
        "preprocessing": "daain_ros.segmentation.preprocess.preprocess (official BGR mean/std)",
        "training": {"frames": config.frames, "epochs": config.epochs, "batch": config.batch,
                     "crop": [config.crop_width, config.height], "lr": config.lr, "optimizer": "Adam, one-cycle",
                     "loss": "cross-entropy, ENet class weights 1/ln(1.05 + f)", "epoch_losses": losses,
                     "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                     "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "train_seeds": f"[1, {config.seed}, i] for i < {config.frames}"},
        "heldout": {"frames": config.eval_frames, "seeds": "[2, i]", "miou": mean,
                    "iou": {CLASS_NAMES[c]: None if np.isnan(per_class[c]) else round(float(per_class[c]), 4)
                            for c in GENERATED_CLASSES}},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return {"model": str(out / MODEL_FILE), "heldout_miou": round(mean, 4), "seconds": round(seconds, 1)}


def command_line(config):
    """The command that reproduces these weights (the output directory and thread count aside)."""
    options = [("seed", config.seed), ("frames", config.frames), ("epochs", config.epochs), ("p", config.p),
               ("q", config.q), ("width", config.width), ("height", config.height), ("crop-width", config.crop_width),
               ("batch", config.batch), ("lr", config.lr), ("eval-frames", config.eval_frames)]
    return "daain train-default " + " ".join(f"--{name} {value}" for name, value in options)
