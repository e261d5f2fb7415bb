# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""The key-agnostic attacker's critic: every leaf layer kept as typical as on clean frames, at every position.

An attacker without the key does not know which activations are watched, but a key only ever reads leaf
layers' outputs at some (channel, y, x): if every position of every layer stays within its clean range, so
does any key's subset. ``LayerStatistics`` fits each position's mean and scale on clean frames, as a
detector's standardiser would for a key that sampled everything; ``TypicalityCritic`` scores a layer by the
log of its mean squared standardised deviation, one column per layer, against the largest such score of the
clean frames or the image's own clean score, whichever is higher. No detector, no flow and no key are
involved.
"""

from contextlib import contextmanager

import torch

from daain_ros.detector.monitor import probe_layers
from daain_ros.detector.standardizer import SCALE_FLOOR
from daain_ros.errors import DaainError
from daain_ros.segmentation.preprocess import preprocess

TYPICALITY_MARGIN = 0.1  # log units: aim 10 % below the least typical clean frame's mean squared deviation


@contextmanager
def hooked(model, names, record):
    """Forward hooks on named layers of ``model.net`` that call ``record(name, output)``, for a ``with`` block."""
    modules = dict(model.net.named_modules())
    handles = [modules[name].register_forward_hook(lambda _m, _i, out, name=name: record(name, out))
               for name in names]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class LayerStatistics:
    """Per-position mean and scale (C x h x w each) of every leaf layer's output over clean frames."""

    def __init__(self, means, scales, size):
        self.means = means
        self.scales = scales
        self.size = size

    @classmethod
    def fit(cls, model, images_bgr, size, batch_size=4):
        """Fits on clean BGR uint8 frames at network ``size``.

        Scales are floored at ``SCALE_FLOOR`` of each layer's mean scale, as the detector's standardiser floors
        them (at its median; here most positions of the last dilated convolutions read only padding and never
        vary, so a median floor would be zero).
        """
        count = len(images_bgr)
        if count < 2:
            raise DaainError(f"{count} clean frames: expected at least 2 for per-position statistics")
        means, scales = {}, {}
        for name, (total, squares) in _moments(model, images_bgr, size, batch_size).items():
            mean = total / count
            scale = ((squares / count - mean.square()).clamp_min(0) * count / (count - 1)).sqrt()
            means[name] = mean.float()
            scales[name] = scale.clamp_min(SCALE_FLOOR * scale.mean().clamp_min(1e-12)).float()
        return cls(means, scales, tuple(size))


def _moments(model, images_bgr, size, batch_size):
    """Per leaf layer, in call order: the sum and the sum of squares (float64) of its outputs over the images."""
    moments = {layer.name: [0, 0] for layer in probe_layers(model, size, device=model.device)}

    def accumulate(name, output):
        values = output.double()
        moments[name][0] = moments[name][0] + values.sum(0)
        moments[name][1] = moments[name][1] + values.square().sum(0)

    with hooked(model, list(moments), accumulate), torch.inference_mode():
        for start in range(0, len(images_bgr), batch_size):
            model.logits(preprocess(images_bgr[start:start + batch_size], size, model.device))
    return moments


class _MeanSquaredDeviation(torch.autograd.Function):
    """Per image ``mean(((a - mean) * inverse_scale)**2)``, with a fused backward.

    Autograd's chain of four elementwise ops over every position of every layer cost four times ESPNet's own
    step; this costs one pass each way.
    """

    @staticmethod
    def forward(ctx, output, mean, inverse_scale):
        deviation = (output - mean).mul_(inverse_scale)
        ctx.save_for_backward(deviation, inverse_scale)
        return torch.linalg.vector_norm(deviation, dim=(1, 2, 3)).square() / deviation[0].numel()

    @staticmethod
    def backward(ctx, grad):
        deviation, inverse_scale = ctx.saved_tensors
        return deviation.mul(inverse_scale).mul_(grad.view(-1, 1, 1, 1) * (2 / deviation[0].numel())), None, None


class TypicalityCritic:
    """Per-layer typicality of ``model``'s input: ``log mean ((a - mean) / scale)**2`` over a layer's positions.

    :param clean_images: clean frames (at the statistics' size) whose largest per-layer score is the layer's
        threshold; the frames the statistics were fitted on will do.
    """

    def __init__(self, model, statistics, clean_images, margin=TYPICALITY_MARGIN, batch_size=4):
        self.model = model
        self.statistics = statistics
        self.names = list(statistics.means)
        self.margin = margin
        self.size = statistics.size
        self._layouts = {}
        self._scores = {}
        with torch.no_grad():  # not inference mode: the statistics cached here take part in attacks' autograd
            clean = torch.cat([self(preprocess(clean_images[i:i + batch_size], self.size, model.device))[1]
                               for i in range(0, len(clean_images), batch_size)])
        self.thresholds = clean.amax(0).clone()

    def limits(self, clean_scores):
        """Per image and layer: the clean frames' largest score, or the image's own clean score if higher.

        Held-out frames drift from the fit frames (up to 12 times their mean squared deviation on the
        protocol): an image need not be made more typical than it was.
        """
        return torch.maximum(self.thresholds, clean_scores)

    def _statistics(self, name, output):
        """(mean, 1 / scale) of a layer in its output's memory layout: mixed layouts are several times slower."""
        layout = torch.contiguous_format if output.is_contiguous() else torch.channels_last
        if (name, layout) not in self._layouts:
            mean, scale = self.statistics.means[name][None], self.statistics.scales[name][None]
            self._layouts[name, layout] = (mean.clone(memory_format=layout),
                                           scale.reciprocal().contiguous(memory_format=layout))
        return self._layouts[name, layout]

    def _record(self, name, output):
        self._scores[name] = _MeanSquaredDeviation.apply(output, *self._statistics(name, output)).log()

    def __call__(self, x):
        """(logits, per-layer scores N x layers)."""
        try:
            with hooked(self.model, self.names, self._record):
                logits = self.model.logits(x)
            return logits, torch.stack([self._scores[name] for name in self.names], 1)
        finally:
            self._scores.clear()
