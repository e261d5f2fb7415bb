"""The DAAIN detector: sampling key, activation gather, standardiser, flow, heads, calibration, fitting
and the artifact (safetensors + JSON).

ROS-free core: imports only ``daain_ros.segmentation`` and the shared errors, device and memory helpers."""
