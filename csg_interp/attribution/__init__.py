"""Attributions, localization and plots built on the gate and the class-specific feature maps."""

from .csg_attribution import MODES, CSGAttribution, expand_to_input, to_visualization

__all__ = [
    "MODES",
    "CSGAttribution",
    "expand_to_input",
    "to_visualization",
]
