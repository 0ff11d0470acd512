"""Composed clips with identities known by construction: real people cut out of registry photos
(``fixtures_images.package_photo``) walk over a real backdrop, cross, pass behind a real brick pillar, and
leave and re-enter the frame.  Used by tests/test_ids.py and benchmarks/bench_ids.py.

Legend: F frames, K people in the scene.

Each person is a rectangular cut-out of a photo with an ``anchor``: the point between the face and the
shoulders, read by eye in the cut-out once (where the mean of a body's head and shoulder keypoints falls).
A scene moves each person along key-framed paths; the person's height in the frame is ``scale`` times the
frame height.  Ground truth per frame: each person's anchor in the frame, and the share of their cut-out
that is visible (inside the frame and not behind someone nearer or the pillar).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from fixtures_images import background, resized
from fixtures_images import package_photo


@dataclass(frozen=True)
class Cutout:
    """A person cut out of a registry photo: ``box_xyxy`` in the photo, ``anchor_xy`` in the cut-out."""

    photo: str
    box_xyxy: tuple[int, int, int, int]
    anchor_xy: tuple[float, float]

    def rgb(self) -> np.ndarray:
        x0, y0, x1, y1 = self.box_xyxy
        return np.ascontiguousarray(package_photo(self.photo)[y0:y1, x0:x1])


PEOPLE = {
    # bus.jpg: the man in the cream coat, full body, and the man in the black coat and red shirt beside him.
    "coat": Cutout("bus", (58, 385, 252, 905), (78.0, 62.0)),
    "black": Cutout("bus", (232, 395, 350, 870), (57.0, 62.0)),
    # t1.jpg: the laughing man in the red shirt, head and chest.
    "red": Cutout("t1", (630, 280, 920, 640), (190.0, 135.0)),
    # zidane.jpg: the grey-haired man on the right, head to waist.
    "grey": Cutout("zidane", (750, 30, 1110, 720), (225.0, 185.0)),
}


@dataclass(frozen=True)
class Walker:
    """One person's path: ``keys`` are (time s, centre x, bottom y), x and y as fractions of the frame's width
    and height, linear between keys and held before the first and after the last.  ``depth``: larger is
    nearer the camera (drawn over smaller)."""

    person: str
    keys: tuple[tuple[float, float, float], ...]
    depth: float

    def at(self, time_s: float) -> tuple[float, float]:
        t, x, y = np.array(self.keys, dtype=np.float64).T
        return float(np.interp(time_s, t, x)), float(np.interp(time_s, t, y))


@dataclass(frozen=True)
class Scene:
    """Walkers over :func:`fixtures_images.background`, and brick pillars (centre x, width) as fractions of
    the frame width, full height, nearer than everyone."""

    name: str
    duration_s: float
    walkers: tuple[Walker, ...]
    pillars: tuple[tuple[float, float], ...] = ()


def _pillar_width(walker_speed: float, person_width: float, hidden_s: float) -> float:
    """Width (fraction of the frame width) of a pillar behind which a walker is wholly hidden for ``hidden_s``."""
    return walker_speed * hidden_s + person_width


def scenes(aspect: float = 16 / 9, scale: float = 0.5) -> dict[str, Scene]:
    """The three identity scenes for frames of ``aspect`` (width / height) and people ``scale`` x the frame
    height tall; the first walker of each is the one that is hidden or leaves:

    * ``crossing``: two people walk past each other, the nearer (wider) one hides most of the other;
    * ``occlusion``: one walks behind a pillar (sized for the scale) and is wholly hidden for 1 s; another
      stands by;
    * ``reentry``: one walks out at the left edge and comes back in at the same edge, wholly out of the
      frame for 1.6 s (1.8 s at a tenth of the frame height); another stands by.
    """
    coat_w = scale * (PEOPLE["coat"].box_xyxy[2] - PEOPLE["coat"].box_xyxy[0]) / (
        PEOPLE["coat"].box_xyxy[3] - PEOPLE["coat"].box_xyxy[1]) / aspect  # the walker's width, frame widths
    speed = (0.72 - 0.12) / 3.0
    return {
        "crossing": Scene("crossing", 2.4, (
            Walker("black", ((0.0, 0.2, 0.94), (2.4, 0.8, 0.94)), depth=0.0),
            Walker("coat", ((0.0, 0.8, 0.96), (2.4, 0.2, 0.96)), depth=1.0),
        )),
        "occlusion": Scene("occlusion", 3.0, (
            Walker("coat", ((0.0, 0.12, 0.95), (3.0, 0.72, 0.95)), depth=0.0),
            Walker("red", ((0.0, 0.9, 0.97), (3.0, 0.87, 0.97)), depth=1.0),
        ), pillars=((0.5, _pillar_width(speed, coat_w, 1.0)),)),
        "reentry": Scene("reentry", 4.2, (
            Walker("black", ((0.0, 0.2, 0.95), (0.7, -0.06, 0.95), (2.2, -0.06, 0.95), (2.9, 0.2, 0.95),
                             (4.2, 0.45, 0.95)), depth=0.0),
            Walker("grey", ((0.0, 0.75, 1.0), (4.2, 0.7, 1.0)), depth=1.0),
        )),
    }


@dataclass
class Truth:
    """Ground truth of a rendered scene: ``people`` (K,) names, ``anchor_xy`` (F, K, 2) pixels,
    ``visible`` (F, K) share of each cut-out in view, ``height_px`` the people's height."""

    people: list[str]
    anchor_xy: np.ndarray
    visible: np.ndarray
    height_px: float


def _brick(height: int, width: int) -> np.ndarray:
    import cv2
    import skimage.data

    grey = cv2.resize(skimage.data.brick(), (width, height), interpolation=cv2.INTER_AREA)
    return np.repeat(grey[..., None], 3, axis=2)


def render(scene: Scene, scale: float, size_wh: tuple[int, int] = (640, 360), fps: int = 30
           ) -> tuple[list[np.ndarray], Truth]:
    """The scene's frames (F of (H, W, 3) uint8) with people ``scale`` x the frame height tall, and its truth."""
    width, height = size_wh
    num_frames = int(round(scene.duration_s * fps))
    height_px = max(8, int(round(scale * height)))
    patches, anchors = [], []
    for w in scene.walkers:
        cut = PEOPLE[w.person]
        rgb = cut.rgb()
        patches.append(resized(rgb, height_px))
        anchors.append(np.array(cut.anchor_xy) * height_px / rgb.shape[0])
    order = np.argsort([w.depth for w in scene.walkers], kind="stable")
    backdrop = background(height, width)
    pillar_cols = []
    for cx, pw in scene.pillars:
        c0, c1 = int(round((cx - pw / 2) * width)), int(round((cx + pw / 2) * width))
        pillar_cols.append((max(c0, 0), min(c1, width), _brick(height, c1 - c0)[:, max(0, -c0):]))
    frames = []
    num = len(scene.walkers)
    anchor_xy, visible = np.zeros((num_frames, num, 2)), np.zeros((num_frames, num))
    for f in range(num_frames):
        t = f / fps
        canvas, label = backdrop.copy(), np.full((height, width), -1, np.int16)
        for k in order:
            patch = patches[k]
            x, y = scene.walkers[k].at(t)
            x0, y0 = int(round(x * width - patch.shape[1] / 2)), int(round(y * height - patch.shape[0]))
            anchor_xy[f, k] = (x0, y0) + anchors[k]
            r0, r1, c0, c1 = max(y0, 0), min(y0 + patch.shape[0], height), max(x0, 0), min(x0 + patch.shape[1], width)
            if r1 > r0 and c1 > c0:
                canvas[r0:r1, c0:c1] = patch[r0 - y0:r1 - y0, c0 - x0:c1 - x0]
                label[r0:r1, c0:c1] = k
        for c0, c1, brick in pillar_cols:
            canvas[:, c0:c1] = brick[:, :c1 - c0]
            label[:, c0:c1] = -1
        counts = np.bincount(label[label >= 0].ravel(), minlength=num)
        visible[f] = counts / [p.shape[0] * p.shape[1] for p in patches]
        frames.append(canvas)
    return frames, Truth([w.person for w in scene.walkers], anchor_xy, visible, float(height_px))


def write_scene(path: Path, scene: Scene, scale: float, size_wh: tuple[int, int] = (640, 360), fps: int = 30
                ) -> Truth:
    """Render ``scene`` and write it as H.264 to ``path``; returns its truth."""
    from footage import write_video

    frames, truth = render(scene, scale, size_wh, fps)
    write_video(path, frames, fps=Fraction(fps))
    return truth


REQUIRED_VISIBLE = 0.5
"""A person with at least this share in view (and the anchor in the frame) must be found; one with less
but some is "don't care": predictions on them are neither right nor wrong."""
CLOSE = 0.25
"""A prediction counts as a person when its anchor is within this many person heights of theirs."""
HEAD_AND_SHOULDERS = np.arange(13)  # BlazePose-33: nose, eyes, ears, mouth, shoulders


def track_anchors(take, num_frames: int, min_conf: float = 0.5) -> dict[int, np.ndarray]:
    """{track id: (F, 2) mean of the track's confident head and shoulder keypoints per frame, NaN where none}."""
    out = {}
    for track in take.tracks:
        anchor = np.full((num_frames, 2), np.nan)
        xy, conf = track.xy[:, HEAD_AND_SHOULDERS], track.conf[:, HEAD_AND_SHOULDERS]
        ok = (conf >= min_conf) & np.isfinite(xy).all(axis=2)
        count = ok.sum(axis=1)
        mean = np.where(ok[..., None], xy, 0.0).sum(axis=1) / np.maximum(count, 1)[:, None]
        rows = count > 0
        anchor[np.asarray(track.frame_index)[rows]] = mean[rows]
        out[int(track.track_id)] = anchor
    return out


def score_take(take, truth: Truth):
    """:func:`rigcast.track.metrics.identity_scores` of a Take's body tracks against ``truth``."""
    from rigcast.track.metrics import identity_scores

    num_frames, num_people = truth.visible.shape
    anchors = track_anchors(take, num_frames)
    ids = np.array(sorted(anchors), dtype=np.int64)
    pred = np.stack([anchors[i] for i in ids], axis=1) if len(ids) else np.zeros((num_frames, 0, 2))
    height, width = take.video.height, take.video.width
    inside = ((truth.anchor_xy >= 0) & (truth.anchor_xy < [width, height])).all(axis=2)
    required = (truth.visible >= REQUIRED_VISIBLE) & inside
    dont_care = (truth.visible > 0) & ~required
    gt_ids, pred_ids, close = [], [], []
    for f in range(num_frames):
        present = np.isfinite(pred[f]).all(axis=1)
        dist = np.linalg.norm(truth.anchor_xy[f][:, None] - pred[f][None], axis=2)  # (K, P)
        near = present[None] & (dist <= CLOSE * truth.height_px)
        keep = present & ~(near[dont_care[f]].any(axis=0) & ~near[required[f]].any(axis=0))
        gt_ids.append(np.nonzero(required[f])[0])
        pred_ids.append(ids[keep])
        close.append(near[np.ix_(required[f], keep)])
    return identity_scores(gt_ids, pred_ids, close)
