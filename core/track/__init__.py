"""Identity tracking: which person box in this frame is which person."""

from .appearance import DESCRIPTOR_SIZE, appearance_descriptor
from .boxes import BoxTracker, box_iou

__all__ = ["DESCRIPTOR_SIZE", "appearance_descriptor", "BoxTracker", "box_iou"]

