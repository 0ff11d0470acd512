"""Lifting 2D/3D landmarks into camera space: the root trajectory."""

from .root import RootSolve, estimate_root_trajectory

__all__ = ["RootSolve", "estimate_root_trajectory"]
