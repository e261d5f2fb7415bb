# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""A secret student network as a consistency check, a defence tried against the key-agnostic attacker (issue 16).

Every check that the key-agnostic attacker defeated was public or a function of activations it keeps typical.
This one is a second network that the attacker does not have: the defender distils ESPNet's labels on clean
frames into a small convolutional network of its own (:class:`Student`), whose initialisation and batch order
come from a secret seed, and flags a frame on which the student shares ESPNet's labels on fewer pixels than on
clean frames (:class:`StudentCheck`). An attack that damages ESPNet's segmentation leaves the student's as it
was unless it fools the student the same way.

The attacker knows the recipe and the frames, not the seed: it trains surrogate students with
:func:`train_student` from seeds of its own, and :class:`StudentCritic` keeps their agreement with ESPNet's
labels above the check's threshold, averaging over them (expectation over students), as the surrogate-key
attacker averages over keys. It pulls both ways: the students towards ESPNet's labels and ESPNet towards
theirs, so that the damage it needs goes first where the students already disagree with ESPNet.

The student sees the network input average-pooled by 2 and predicts at 1/8 of the network size, upsampled
bilinearly; it is trained at 1/8 on ESPNet's labels there. ``daain defences`` reports how long that took.
"""

import torch
import torch.nn.functional as F
from torch import nn

from daain_ros.errors import DaainError
from daain_ros.evaluation.adaptive_critics import AgreementCritic, labels_of, log_disagreement
from daain_ros.evaluation.attacks import predict_labels
from daain_ros.segmentation.espnet import NUM_CLASSES
from daain_ros.segmentation.preprocess import preprocess

EPOCHS = 100
WIDTH = 32
STRIDE = 8  # the student's output stride at the network size
#: ESPNet's input is standardised pixels divided by 255 (the official preprocessing), so its variance lies
#: below BatchNorm's eps: the student multiplies it back, or its first BatchNorm's running variance would not
#: describe its training batches until hundreds of steps had passed (a short-trained student judged garbage).
INPUT_SCALE = 255.0


class Student(nn.Module):
    """Network input (normalised, at the network size) -> logits at the same size, from 1/8 of it."""

    def __init__(self, width=WIDTH, classes=NUM_CLASSES):
        super().__init__()

        def block(inputs, outputs, stride=1, dilation=1):
            return [nn.Conv2d(inputs, outputs, 3, stride, dilation, dilation, bias=False), nn.BatchNorm2d(outputs),
                    nn.ReLU(inplace=True)]

        self.body = nn.Sequential(*block(3, width, 2), *block(width, 2 * width, 2), *block(2 * width, 2 * width, 1, 2),
                                  *block(2 * width, 2 * width, 1, 4), *block(2 * width, 2 * width, 1, 8),
                                  nn.Conv2d(2 * width, classes, 1))

    def coarse(self, x):
        """Logits at 1/8 of the input size."""
        return self.body(F.avg_pool2d(x, 2) * INPUT_SCALE)

    def forward(self, x):
        return F.interpolate(self.coarse(x), size=x.shape[-2:], mode="bilinear", align_corners=False)

    logits = forward  # as ``SegmentationModel.logits``, so that ``predict_labels`` serves a student too

    @property
    def device(self):
        return self.body[0].weight.device


def train_student(model, images_bgr, size, seed, epochs=EPOCHS, batch_size=16):
    """A :class:`Student` (eval mode) distilled from ``model``'s labels on BGR uint8 frames at network ``size``.

    Deterministic in ``seed``, which decides the initialisation and the batch order; torch's global random state
    is left as it was.
    """
    if epochs < 1 or not images_bgr:
        raise DaainError(f"{epochs} epochs on {len(images_bgr)} frames: expected at least one of each")
    if size[0] % STRIDE or size[1] % STRIDE:
        raise DaainError(f"network size {size[0]}x{size[1]}: a student needs multiples of {STRIDE}")
    half = STRIDE // 2
    labels = torch.as_tensor(predict_labels(model, images_bgr, size))[:, half::STRIDE, half::STRIDE].long()
    x = preprocess(images_bgr, size, model.device)
    labels = labels.to(model.device)
    steps = epochs * -(-len(x) // batch_size)
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        student = Student().to(model.device)
        optimizer = torch.optim.Adam(student.parameters(), lr=3e-3, weight_decay=1e-5)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(batch_size):
                loss = F.cross_entropy(student.coarse(x[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    return student.eval().requires_grad_(False)


class StudentCheck:
    """Per frame, the share of pixels on which ``student`` and ``model`` give the same label."""

    def __init__(self, model, student, size):
        self.model = model
        self.student = student
        self.size = tuple(size)

    def __call__(self, images_bgr, labels=None):
        """Agreements (float per frame) of BGR uint8 frames at network size; ``labels``: ``model``'s, if known."""
        own = predict_labels(self.model, images_bgr, self.size) if labels is None else labels
        return (predict_labels(self.student, images_bgr, self.size) == own).mean((1, 2))


class StudentCritic(AgreementCritic):
    """The attacker's critic for DAAIN plus the student check: one term per surrogate student of its own."""

    def __init__(self, inner, students, agreement_limit):
        if not students:
            raise DaainError("no surrogate students given: expected at least one")
        super().__init__(inner, agreement_limit, len(students))
        self.students = list(students)

    def disagreements(self, x, logits):
        """Per surrogate, its log disagreement with ESPNet, whose gradient moves both networks.

        The student moves towards ESPNet's labels and ESPNet towards the student's, so that the damage can go
        where the student already disagrees.
        """
        terms = []
        for student in self.students:
            own = student(x)
            terms.append((log_disagreement(own, labels_of(logits)) + log_disagreement(logits, labels_of(own))) / 2)
        return terms
