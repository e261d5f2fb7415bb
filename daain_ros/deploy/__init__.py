# Copyright 2026 daain_ros maintainers
#
# Use of this source code is governed by an MIT-style
# license that can be found in the LICENSE file or at
# https://opensource.org/licenses/MIT.

"""Deployment: the monitored network exported as one ONNX graph, and the backends the pipeline runs it on.

``torch`` runs the one-graph monitor in PyTorch; ``onnxruntime`` runs its ONNX export on ONNX Runtime.
Only this package imports ``onnx`` and ``onnxruntime``, and those only when an export or that backend is
asked for.
"""

#: The backends by name: imported without torch, so a command line can offer them before loading it.
BACKENDS = ("torch", "onnxruntime")
#: What may be asked for: a backend, or ``auto``: ``onnxruntime`` on a CPU, ``torch`` on CUDA, each the faster
#: there (docs/node.md, "Choosing backend, threads and workers").
BACKEND_CHOICES = ("auto", *BACKENDS)
