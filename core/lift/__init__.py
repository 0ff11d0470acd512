"""Lifting 2D/3D landmarks into camera space: the root trajectory (``root``), one floor for everyone
(``ground``), planted feet held still (``feet``)."""

from .root import RootSolve, estimate_root_trajectory

__all__ = ["RootSolve", "estimate_root_trajectory"]
