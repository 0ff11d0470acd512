"""Identity metrics for multi-person tracking against a known ground truth: IDF1 and id switches.

Legend: G ground-truth people in a frame, P predicted tracks in a frame.

Both metrics take the same per-frame input: the ground-truth ids present
``gt_ids`` (G,), the predicted track ids present ``pred_ids`` (P,), and
``close`` (G, P), whether that prediction may count as that person in that
frame (for instance: its box centre lies in the person's visible box).

IDF1 (Ristani et al. 2016, "Performance Measures and a Data Set for
Multi-Target, Multi-Camera Tracking"): each ground-truth trajectory is paired
with at most one predicted trajectory, and vice versa, so that the number of
frames in which paired trajectories are close (IDTP) is largest; that pairing
is one Hungarian solve over trajectories.  Then IDFN = ground-truth detections
- IDTP, IDFP = predicted detections - IDTP, and IDF1 = 2 IDTP / (2 IDTP + IDFP
+ IDFN).  Unlike per-frame matching, a track that swaps people half-way is
paired with one of them only, so IDF1 falls with every frame it spends on the
wrong person.

Id switches (CLEAR MOT, Bernardin and Stiefelhagen 2008): frame by frame,
a person keeps the track it was matched to last while the two are still close;
the rest are matched by a Hungarian solve; a switch is a person matched to a
track other than its previous one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class IdentityScores:
    """IDF1 and its counts, and the CLEAR-MOT id switches, over one clip."""

    idf1: float
    idtp: int
    idfp: int
    idfn: int
    id_switches: int
    num_gt_ids: int
    num_pred_ids: int
    pairs: dict[int, int]  # ground-truth id -> the predicted id IDF1 paired it with
    found: int = 0  # ground-truth detections matched to some prediction in their frame (any id)

    @property
    def idp(self) -> float:
        """Identity precision: IDTP / predicted detections."""
        return self.idtp / max(self.idtp + self.idfp, 1)

    @property
    def recall(self) -> float:
        """Detection recall per frame, ids aside: found / ground-truth detections."""
        return self.found / max(self.idtp + self.idfn, 1)

    @property
    def idr(self) -> float:
        """Identity recall: IDTP / ground-truth detections."""
        return self.idtp / max(self.idtp + self.idfn, 1)


def _check_frame(k: int, gt: np.ndarray, pred: np.ndarray, close: np.ndarray) -> None:
    if close.shape != (gt.size, pred.size):
        raise ValueError(f"frame {k}: close must be (G, P) = ({gt.size}, {pred.size}), got {close.shape}")
    if np.unique(gt).size != gt.size or np.unique(pred).size != pred.size:
        raise ValueError(f"frame {k}: an id appears twice (ground truth {gt.tolist()}, predicted {pred.tolist()})")


def identity_scores(gt_ids: Sequence[np.ndarray], pred_ids: Sequence[np.ndarray],
                    close: Sequence[np.ndarray]) -> IdentityScores:
    """IDF1 and id switches of predicted tracks against the ground truth, over F frames.

    ``gt_ids[f]`` (G,) and ``pred_ids[f]`` (P,) are the integer ids present in
    frame f, each at most once; ``close[f]`` (G, P) bool says which pairs may
    count as one person in that frame.
    """
    if not len(gt_ids) == len(pred_ids) == len(close):
        raise ValueError(f"gt_ids, pred_ids and close must cover the same frames, got "
                         f"{len(gt_ids)}, {len(pred_ids)} and {len(close)}")
    frames = []
    for g, p, c in zip(gt_ids, pred_ids, close):
        g, p, c = np.asarray(g, dtype=np.int64).reshape(-1), np.asarray(p, dtype=np.int64).reshape(-1), np.asarray(c)
        frames.append((g, p, c.astype(bool).reshape(g.size, p.size) if c.size == 0 else c.astype(bool)))
    for k, (g, p, c) in enumerate(frames):
        _check_frame(k, g, p, c)
    all_gt = np.unique(np.concatenate([g for g, _, _ in frames] + [np.zeros(0, np.int64)]))
    all_pred = np.unique(np.concatenate([p for _, p, _ in frames] + [np.zeros(0, np.int64)]))

    # IDF1: frames in which each (ground truth, prediction) pair of trajectories is close.
    together = np.zeros((all_gt.size, all_pred.size), dtype=np.int64)
    for g, p, c in frames:
        rows, cols = np.nonzero(c)
        np.add.at(together, (np.searchsorted(all_gt, g[rows]), np.searchsorted(all_pred, p[cols])), 1)
    rows, cols = linear_sum_assignment(-together) if together.size else (np.zeros(0, int), np.zeros(0, int))
    idtp = int(together[rows, cols].sum())
    num_gt = sum(g.size for g, _, _ in frames)
    num_pred = sum(p.size for _, p, _ in frames)
    idf1 = 2 * idtp / (num_gt + num_pred) if num_gt + num_pred else 1.0
    pairs = {int(all_gt[r]): int(all_pred[c]) for r, c in zip(rows, cols) if together[r, c] > 0}

    # Id switches: keep last frame's correspondences that still hold, match the rest.
    last: dict[int, int] = {}
    switches = found = 0
    for g, p, c in frames:
        matched: dict[int, int] = {}
        free_g, free_p = np.ones(g.size, dtype=bool), np.ones(p.size, dtype=bool)
        where_p = {int(pid): j for j, pid in enumerate(p)}
        for i, gid in enumerate(g.tolist()):
            j = where_p.get(last.get(gid, -1))
            if j is not None and c[i, j] and free_p[j]:
                matched[gid] = int(p[j])
                free_g[i] = free_p[j] = False
        sub = c[np.ix_(free_g, free_p)]
        if sub.any():
            r, q = linear_sum_assignment(~sub)  # cost 0 for close pairs, 1 otherwise
            gi, pj = np.nonzero(free_g)[0][r], np.nonzero(free_p)[0][q]
            for i, j in zip(gi, pj):
                if c[i, j]:
                    matched[int(g[i])] = int(p[j])
        found += len(matched)
        for gid, pid in matched.items():
            if gid in last and last[gid] != pid:
                switches += 1
            last[gid] = pid
    return IdentityScores(idf1=float(idf1), idtp=idtp, idfp=num_pred - idtp, idfn=num_gt - idtp,
                          id_switches=switches, num_gt_ids=int(all_gt.size), num_pred_ids=int(all_pred.size),
                          pairs=pairs, found=found)
