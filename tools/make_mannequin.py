#!/usr/bin/env python3
"""Generate the default render character: a stylised wooden artist's mannequin skinned to rigcast's armature.

    .venv/bin/python tools/make_mannequin.py [--out assets/mannequin]

Writes, deterministically (byte-identical on every run; vertices are rounded
to 0.01 mm before they are stored, so another machine's last bits do not show):

* ``mannequin.npz`` -- ``vertices`` (V, 3) float32 metres in the armature
  space of ``rigcast.retarget.default_rig(1.75)`` (Z up, facing -Y, T-pose);
  ``faces`` (F, 3) int32, counter-clockwise seen from outside; ``bone`` (V,)
  int32, the one bone each vertex follows (rigid skinning); ``bone_names``
  (B,) unicode, the armature's bones in order; ``color`` (3,) float32 sRGB
  0..1; ``height_m`` (1,) float32.
* ``mannequin.json`` -- provenance: generator, parameters, counts, sha256.

Shape: one capsule per body segment (``PARTS``: the bone it follows, its two
ends as joints of the rest pose, and the radii there), overlapping at the
joints like a wooden mannequin's ball joints; a capsule across the hips and
one across the shoulders give the pelvis and the chest their width.  Made from
nothing but the rig's joint positions and these numbers: no third-party
geometry, so it is as licence-clean as the code (Apache-2.0).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from make_mask import npz_bytes, stable_float32, write_atomic  # noqa: E402  (one writer for byte-stable assets)

FORMAT = 1
GENERATOR = "tools/make_mannequin.py"
DEFAULT_OUT = ROOT / "assets" / "mannequin"
DECIMALS = 5
COLOR_RGB = (0.80, 0.62, 0.42)  # light wood
SIDES, RINGS = 14, 4

# (bone, from, to, radius at from, radius at to); points are joints of the rest pose, ".L"/".R" mirrored.
PARTS = (
    ("hips", "hip.L", "hip.R", 0.115, 0.115),
    ("hips", "pelvis", "spine", 0.12, 0.115),
    ("spine", "spine", "chest", 0.115, 0.13),
    ("chest", "chest", "neck", 0.135, 0.125),
    ("chest", "shoulder.L", "shoulder.R", 0.07, 0.07),
    ("neck", "neck", "head", 0.05, 0.045),
    ("head", "head_low", "head_high", 0.085, 0.095),
    ("upper_arm", "shoulder", "elbow", 0.055, 0.042),
    ("lower_arm", "elbow", "wrist", 0.04, 0.03),
    ("hand", "wrist", "hand_end", 0.035, 0.03),
    ("thigh", "hip", "knee", 0.08, 0.055),
    ("shin", "knee", "ankle", 0.052, 0.038),
    ("foot", "ankle", "toe", 0.04, 0.035),
    ("toes", "toe", "toe_end", 0.03, 0.025),
)


def joints(rig) -> dict[str, np.ndarray]:
    """Named rest-pose points of ``rig`` (default_rig): bone heads and tails, both sides, and the head's centre line."""
    names = list(rig.bone_names)
    head, tail = rig.head_xyz, rig.tail_xyz
    at = {"pelvis": head[names.index("hips")], "spine": head[names.index("spine")],
          "chest": head[names.index("chest")], "neck": head[names.index("neck")], "head": head[names.index("head")]}
    top = tail[names.index("head")]
    at["head_low"] = at["head"] + 0.35 * (top - at["head"])
    at["head_high"] = at["head"] + 0.55 * (top - at["head"])
    for s in ("L", "R"):
        at[f"shoulder.{s}"] = head[names.index(f"upper_arm.{s}")]
        at[f"elbow.{s}"] = head[names.index(f"lower_arm.{s}")]
        at[f"wrist.{s}"] = head[names.index(f"hand.{s}")]
        at[f"hand_end.{s}"] = tail[names.index(f"hand.{s}")]
        at[f"hip.{s}"] = head[names.index(f"thigh.{s}")]
        at[f"knee.{s}"] = head[names.index(f"shin.{s}")]
        at[f"ankle.{s}"] = head[names.index(f"foot.{s}")]
        at[f"toe.{s}"] = head[names.index(f"toes.{s}")]
        at[f"toe_end.{s}"] = tail[names.index(f"toes.{s}")]
    return at


def build(height_m: float) -> dict[str, np.ndarray]:
    from rigcast.overlay.figures import capsule, merge_parts
    from rigcast.retarget import default_rig

    rig = default_rig(height_m)
    names = list(rig.bone_names)
    at = joints(rig)
    parts = []
    for bone, a, b, ra, rb in PARTS:
        sides = ("L", "R") if bone not in names else ("",)
        for s in sides:
            suffix = f".{s}" if s else ""
            pa, pb = at.get(a + suffix, at.get(a)), at.get(b + suffix, at.get(b))
            parts.append((names.index(bone + suffix), *capsule(pa, pb, ra, rb, SIDES, RINGS)))
    vertices, faces, bone = merge_parts(parts)
    return {
        "vertices": stable_float32(vertices, DECIMALS),
        "faces": faces.astype(np.int32),
        "bone": bone.astype(np.int32),
        "bone_names": np.array(names),
        "color": np.array(COLOR_RGB, np.float32),
        "height_m": np.array([height_m], np.float32),
    }


def main(argv: list[str] | None = None) -> int:
    from rigcast.overlay.figures import MANNEQUIN_HEIGHT_M

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default assets/mannequin)")
    args = parser.parse_args(argv)
    arrays = build(MANNEQUIN_HEIGHT_M)
    npz = npz_bytes(arrays)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "mannequin.npz", npz)
    provenance = {
        "format": FORMAT,
        "generator": GENERATOR,
        "licence": "Apache-2.0 (generated from rigcast's own armature; no third-party geometry)",
        "frame": "armature space of rigcast.retarget.default_rig(height_m): metres, Z up, facing -Y, T-pose",
        "parameters": {"height_m": MANNEQUIN_HEIGHT_M, "sides": SIDES, "rings": RINGS, "decimals": DECIMALS,
                       "color_srgb": list(COLOR_RGB), "parts": [list(p) for p in PARTS]},
        "counts": {"vertices": int(len(arrays["vertices"])), "faces": int(len(arrays["faces"])),
                   "bones": int(len(arrays["bone_names"]))},
        "files": {"mannequin.npz": {"sha256": hashlib.sha256(npz).hexdigest(), "bytes": len(npz)}},
    }
    write_atomic(args.out / "mannequin.json", (json.dumps(provenance, indent=2) + "\n").encode())
    print(f"wrote {args.out}: {len(arrays['vertices'])} vertices, {len(arrays['faces'])} faces, "
          f"{len(arrays['bone_names'])} bones")
    return 0


if __name__ == "__main__":
    sys.exit(main())
