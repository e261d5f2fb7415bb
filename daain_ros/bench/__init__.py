"""``daain bench``: what DAAIN costs on top of ESPNet, in time and memory, in one process, in the node and to fit."""
