"""``make demo``: the generated drive played into the node, its report, and the packaged default model and detector."""
