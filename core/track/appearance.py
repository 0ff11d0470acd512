"""A cheap colour descriptor of a person box, for re-identification across crossings.

Legend: D descriptor length (HUE_BINS * SAT_BINS).
"""

from __future__ import annotations

import math

import numpy as np

HUE_BINS = 16
SAT_BINS = 4
DESCRIPTOR_SIZE = HUE_BINS * SAT_BINS

# The torso of a standing person's box, as fractions of its width and height:
# clothing colour lives there, while the head, arms and legs pull in skin,
# background and whoever stands beside.
_TORSO_X = (0.25, 0.75)
_TORSO_Y = (0.2, 0.6)
_MIN_VALUE = 25  # HSV value below which hue and saturation are noise
# A torso region of more pixels than this is read on an even grid of about this many: the 64-bin histogram
# is as good, and a face's or person's region of 15-20 thousand pixels costs a quarter of the time.
SAMPLE_PX = 4096
_MASK_LOW = np.array([0, 0, _MIN_VALUE], dtype=np.uint8)
_MASK_HIGH = np.array([255, 255, 255], dtype=np.uint8)


def appearance_descriptor(rgb: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """(D,) L2-normalised hue-saturation histogram of the torso part of ``box_xyxy`` (4,) in ``rgb`` (H, W, 3) uint8.

    The histogram is normalised to sum 1 and square-rooted (the Hellinger
    map), so it has unit L2 norm and the dot product of two descriptors is
    their Bhattacharyya coefficient: 1 for equal colour distributions, 0 for
    disjoint ones.  Hue-saturation ignores brightness, so shade and exposure
    changes matter little.  Returns all zeros when the torso region has no
    usable pixel (outside the image, or black); :class:`BoxTracker` treats a
    zero descriptor as "appearance unknown".  A region of more than
    ``SAMPLE_PX`` pixels is read on an even grid of about that many.
    """
    import cv2

    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    box_xyxy = np.asarray(box_xyxy, dtype=np.float64)
    if box_xyxy.shape != (4,) or not np.isfinite(box_xyxy).all():
        raise ValueError(f"box_xyxy must be 4 finite numbers (x1, y1, x2, y2), got {box_xyxy}")
    x1, y1, x2, y2 = box_xyxy.tolist()
    width, height = x2 - x1, y2 - y1
    height_px, width_px = rgb.shape[:2]
    c0 = min(max(math.floor(x1 + _TORSO_X[0] * width), 0), width_px)
    c1 = min(max(math.ceil(x1 + _TORSO_X[1] * width), 0), width_px)
    r0 = min(max(math.floor(y1 + _TORSO_Y[0] * height), 0), height_px)
    r1 = min(max(math.ceil(y1 + _TORSO_Y[1] * height), 0), height_px)
    out = np.zeros(DESCRIPTOR_SIZE)
    if c1 <= c0 or r1 <= r0:
        return out
    region = rgb[r0:r1, c0:c1]
    step = int(math.sqrt(region.shape[0] * region.shape[1] / SAMPLE_PX))
    if step > 1:  # every step-th pixel of every step-th row (OpenCV's nearest neighbour; a strided copy is slower)
        region = cv2.resize(region, (-(-region.shape[1] // step), -(-region.shape[0] // step)),
                            interpolation=cv2.INTER_NEAREST)
    hsv = cv2.cvtColor(region, cv2.COLOR_RGB2HSV)  # H in [0, 180)
    mask = cv2.inRange(hsv, _MASK_LOW, _MASK_HIGH)  # 255 where value >= _MIN_VALUE
    hist = cv2.calcHist([hsv], [0, 1], mask, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel().astype(np.float64)
    total = hist.sum()
    if total <= 0:
        return out
    return np.sqrt(hist / total)
