# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""``daain segment``: ESPNet train-id maps (and optional colour overlays) for image files."""

from pathlib import Path

import torch
from tqdm import tqdm

from daain_ros.device import resolve_device
from daain_ros.io.images import read_bgr, write_image
from daain_ros.segmentation.cityscapes import overlay
from daain_ros.segmentation.espnet import load_espnet
from daain_ros.segmentation.network_size import DEFAULT_SIZE, check_network_size
from daain_ros.segmentation.preprocess import preprocess, resize_bgr


def register(sub):
    parser = sub.add_parser("segment", help="segment images with ESPNet, writing train-id PNGs")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--model", required=True, help="ESPNet checkpoint (.pth or .safetensors)")
    parser.add_argument("--width", type=int, default=DEFAULT_SIZE[0])
    parser.add_argument("--height", type=int, default=DEFAULT_SIZE[1])
    parser.add_argument("--color", action="store_true", help="also write <stem>_color.png overlays")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, type=Path)
    parser.set_defaults(run=run)


def run(args):
    size = check_network_size(args.width, args.height)
    device = resolve_device(args.device)
    model = load_espnet(args.model, device)
    for path in tqdm(args.images, desc="segment", unit="img"):
        image = read_bgr(path)
        with torch.inference_mode():
            labels = model.logits(preprocess([image], size, device)).argmax(1)[0].byte().cpu().numpy()
        stem = Path(path).stem
        write_image(args.out / f"{stem}.png", labels)
        if args.color:
            resized = resize_bgr(image, size).round().astype("uint8")
            write_image(args.out / f"{stem}_color.png", overlay(resized, labels)[..., ::-1])
