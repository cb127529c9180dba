"""Causal market analysis on numpy arrays: volume profile, clustering, box, MA25, squeeze, VSA."""
