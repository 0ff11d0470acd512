"""Face pipeline speed against MediaPipe FaceMesh on the same single-face clip, in the same run.

    .venv/bin/python benchmarks/bench_faces.py [--frames N] [--rounds R]

Prints faces per second of rigcast's face tracking (detector when needed,
the 478 refined landmarks, head pose) and of ``mediapipe.solutions.face_mesh``
(video mode, refine_landmarks=True), each the median of interleaved runs,
and their ratio (target >= 1.0): the ratio of the medians, and the median
(with quartiles) of each round's own ratio.  The second is the steadier on
a shared machine, whose speed drifts between rounds: each round compares
runs seconds apart.  rigcast runs as analyze() runs it (the
attention model, two frames in flight) and, for comparison, without head
poses, with one frame in flight (every frame followed from the one before,
as MediaPipe does), and with the mesh + iris models, pipelined and one
stage at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analyze import decode, interleaved_runs, single_person_clip  # noqa: E402


def rigcast_pass(frames, landmarks: str = "attention", pipelined: bool = True, head_pose: bool = True,
                 frames_in_flight: int = 2):
    """faces/s of FaceAnalyzer with ``landmarks`` (see rigcast.pipeline.faces.FACE_LANDMARK_MODELS) over
    ``frames``, with the face's filtered landmarks and head pose in every frame (unless
    ``head_pose=False``: landmarks only, what FaceMesh gives), driven as rigcast.pipeline.analyze.analyze
    drives them: frames are submitted two ahead (submit_ahead), frame t is finished (face ids, and irises
    with the iris model) on the analyser's worker thread while later frames are tracked
    (``pipelined=False``: process() one frame at a time), and each finished frame goes to a
    FacePoseStream, which filters its landmarks and solves its poses on another worker."""
    import numpy as np

    from rigcast.camera import Intrinsics
    from rigcast.pipeline.analyze import AnalyzeConfig, FacePoseStream, _face_payload, submit_ahead, \
        single_threaded_libraries
    from rigcast.pipeline.faces import FaceAnalyzer, FaceConfig, make_face_models
    from rigcast.pipeline.follow import completed

    detector, landmarker = make_face_models(device="cpu", landmarks=landmarks)
    analyzer = FaceAnalyzer(detector, landmarker, FaceConfig(max_faces=1, frames_in_flight=frames_in_flight))
    h, w = frames[0].shape[:2]
    intrinsics = Intrinsics.from_fov(w, h)
    analyzer.process(frames[0], 0.0, analyzer.new_state())  # warm up

    def run() -> float:
        state = analyzer.new_state()
        poses = FacePoseStream(intrinsics, AnalyzeConfig(bodies=False)) if head_pose else None
        faces = 0

        def submit(item):
            i, f = item
            return analyzer.submit(f, i / 30.0, state) if pipelined else completed(analyzer.process(f, i / 30.0, state))

        with single_threaded_libraries():  # as rigcast.pipeline.analyze.analyze runs it
            t0 = time.perf_counter()
            for (i, _), future in submit_ahead(enumerate(frames), submit):
                records = future.result()[0]
                faces += len(records)
                if poses is not None:
                    poses.add(i, i / 30.0, np.array([r.face_id for r in records]), _face_payload(records))
            if poses is not None:
                poses.result()
            return faces / (time.perf_counter() - t0)
    return run


def mediapipe_pass(frames):
    import mediapipe as mp

    def run() -> float:
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
            faces = 0
            t0 = time.perf_counter()
            for f in frames:
                faces += len(mesh.process(f).multi_face_landmarks or ())
            return faces / (time.perf_counter() - t0)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        frames = list(decode(single_person_clip(Path(tmp), args.frames)))
    variants = {
        "rigcast": rigcast_pass(frames),
        "rigcast landmarks only (no head pose)": rigcast_pass(frames, head_pose=False),
        "rigcast one frame in flight": rigcast_pass(frames, frames_in_flight=1),
        "rigcast mesh+iris": rigcast_pass(frames, "mesh+iris"),
        "rigcast mesh+iris one stage at a time": rigcast_pass(frames, "mesh+iris", False),
    }
    import numpy as np

    runs = interleaved_runs({**variants, "mediapipe": mediapipe_pass(frames)}, args.rounds)
    fps = {name: float(np.median(v)) for name, v in runs.items()}
    paired = {name: np.percentile(np.array(runs[name]) / np.array(runs["mediapipe"]), [25, 50, 75])
              for name in variants}
    theirs = fps["mediapipe"]
    print(f"faces per second ({args.frames} frames 640x480, one face, 478 landmarks + head pose, median of "
          f"{args.rounds} interleaved runs; MediaPipe FaceMesh refine_landmarks=True {theirs:.1f}):")
    print(f"  {'':<40} {'faces/s':>7}  {'ratio of medians':>16}  {'per-round ratio: median (quartiles)':>36}")
    for name in variants:
        q1, median, q3 = paired[name]
        print(f"  {name:<40} {fps[name]:7.1f}  {fps[name] / theirs:16.2f}  {median:13.2f} ({q1:.2f}-{q3:.2f})"
              + ("  (target >= 1.0)" if name == "rigcast" else ""))
    print(json.dumps({"mediapipe_faces_per_s": round(theirs, 2), "ratio": round(fps["rigcast"] / theirs, 3),
                      "paired_ratio": round(float(paired["rigcast"][1]), 3),
                      **{f"{k.split(' (')[0].replace(' ', '_')}_faces_per_s": round(v, 2) for k, v in fps.items()
                         if k != "mediapipe"}}))


if __name__ == "__main__":
    main()
