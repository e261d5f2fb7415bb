"""``daain train-default``: trains the package's small default ESPNet from scratch on generated streets.

The default model lets ``make demo`` and the tests run without the official Cityscapes checkpoints: it
is trained only on ``daain_ros.io.synthetic`` scenes, preprocessed exactly as the official model's input
(BGR, Cityscapes mean/std), so it is a drop-in ESPNet for everything that takes ``--model``. Training
frames and held-out frames come from disjoint seed streams; the held-out mIoU goes into the JSON.
"""

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from daain_ros.segmentation.cityscapes import CLASS_NAMES, UNLABELLED
from daain_ros.demo.default_assets import DEFAULT_DIR, INFO_FILE, MODEL_FILE
from daain_ros.errors import DaainError
from daain_ros.segmentation.espnet import NUM_CLASSES, ESPNet, save_espnet
from daain_ros.segmentation.preprocess import check_network_size, preprocess
from daain_ros.io.synthetic import GENERATED_CLASSES, miou, random_scene

_TRAIN, _HELDOUT = 1, 2  # first word of the seed entropy: training and held-out scenes never share a stream


def train_seed(seed, index):
    return [_TRAIN, seed, index]


def heldout_seed(index):
    """Seed of held-out scene ``index``: never drawn by training, whatever ``--seed`` was."""
    return [_HELDOUT, index]


def register(sub):
    parser = sub.add_parser("train-default", help="train the small default ESPNet on generated street scenes")
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="directory for the .safetensors and .json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=640, help="distinct generated training frames")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--p", type=int, default=2, help="ESP blocks at level 2")
    parser.add_argument("--q", type=int, default=3, help="ESP blocks at level 3")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--crop-width", type=int, default=256,
                        help="train on full-height random crops this wide (multiple of 8; the width: none)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=4e-3, help="peak learning rate (one-cycle schedule)")
    parser.add_argument("--eval-frames", type=int, default=60, help="held-out frames for the reported mIoU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    parser.set_defaults(run=run)


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


def train(args):
    """Trains an ESPNet from scratch as ``args`` say: (net, mean loss per epoch, seconds)."""
    size = check_network_size(args.width, args.height)
    crop = check_network_size(args.crop_width, args.height)[0]
    if crop > size[0] or args.epochs < 1 or not 1 <= args.batch <= args.frames:
        raise DaainError(f"crop width {crop}, width {size[0]}, frames {args.frames}, epochs {args.epochs}, "
                         f"batch {args.batch}: expected crop width <= width, epochs >= 1, 1 <= batch <= frames")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng([_TRAIN, args.seed, 1 << 20])
    images, labels = generate([train_seed(args.seed, i) for i in range(args.frames)], size, "generate")
    criterion = nn.CrossEntropyLoss(weight=class_weights(labels), ignore_index=UNLABELLED)
    net = ESPNet(NUM_CLASSES, args.p, args.q).to(memory_format=torch.channels_last)  # ~20 % faster on CPU
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=1e-5)
    steps = args.frames // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * steps,
                                                   pct_start=0.15)
    started = time.monotonic()
    net.train()
    losses = []
    for epoch in range(args.epochs):
        order = rng.permutation(args.frames)
        batches = (order[i * args.batch:(i + 1) * args.batch] for i in range(steps))
        progress = tqdm(batches, total=steps, desc=f"epoch {epoch + 1}/{args.epochs}", unit="step")
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


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu_started = time.process_time()
    net, losses, seconds = train(args)
    cpu_seconds = time.process_time() - cpu_started
    size = (args.width, args.height)
    per_class, mean = evaluate(net, args.eval_frames, size)
    args.out.mkdir(parents=True, exist_ok=True)
    save_espnet(net, args.out / MODEL_FILE, args.p, args.q)
    info = {
        "command": command_line(args),
        "seed": args.seed, "p": args.p, "q": args.q, "classes": NUM_CLASSES, "size": list(size),
        "preprocessing": "daain_ros.segmentation.preprocess.preprocess (official BGR mean/std)",
        "training": {"frames": args.frames, "epochs": args.epochs, "batch": args.batch,
                     "crop": [args.crop_width, args.height], "lr": args.lr, "optimizer": "Adam, one-cycle",
                     "loss": "cross-entropy, ENet class weights 1/ln(1.05 + f)", "epoch_losses": losses,
                     "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1),
                     "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "train_seeds": f"[1, {args.seed}, i] for i < {args.frames}"},
        "heldout": {"frames": args.eval_frames, "seeds": "[2, i]", "miou": mean,
                    "iou": {CLASS_NAMES[c]: None if np.isnan(per_class[c]) else round(float(per_class[c]), 4)
                            for c in GENERATED_CLASSES}},
    }
    (args.out / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({"model": str(args.out / MODEL_FILE), "heldout_miou": round(mean, 4),
                      "seconds": round(seconds, 1)}))


def command_line(args):
    """The command that reproduces these weights (the output directory and thread count aside)."""
    options = [("seed", args.seed), ("frames", args.frames), ("epochs", args.epochs), ("p", args.p), ("q", args.q),
               ("width", args.width), ("height", args.height), ("crop-width", args.crop_width),
               ("batch", args.batch), ("lr", args.lr), ("eval-frames", args.eval_frames)]
    return "daain train-default " + " ".join(f"--{name} {value}" for name, value in options)
