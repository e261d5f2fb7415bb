"""ESPNet segmentation as published: the network, its official preprocessing, Cityscapes ids and palette.

ROS-free core: imports nothing from the rest of the package."""
