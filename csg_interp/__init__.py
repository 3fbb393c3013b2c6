"""csg_interp: class-specific gates for CNNs, their metrics, attributions and applications.

Implements and extends *Training Interpretable Convolutional Neural Networks by Differentiating
Class-specific Filters* (Liang et al., ECCV 2020, arXiv:2007.08194).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
