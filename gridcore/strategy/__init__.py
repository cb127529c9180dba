"""Strategy rules on top of the analysis layer: when and in which direction a grid may start."""
