"""Retargeting: canonical humanoid points per frame -> pose-bone rotations on any humanoid rig.

Legend: T frames, K canonical points, B bones.

The flow::

    source: BlazePose / COCO / ViTPose / H3.6M positions, a Take track, or an
    animated rig (a BVH clip)
      -> CanonicalPose (T, K, 3), Z-up world           canonical.py
    target Rig (B bones, rest matrices) + BoneMap      rig.py, bone_map.py
      -> retarget() -> Motion: (T, B, 4) pose-bone quaternions + root location   solve.py
         with foot contact, grounding and locking      contact.py

Pure numpy; never imports bpy.
"""

from .bone_map import BoneMap, DetectReport, classify_name, detect_bone_map, load_preset, preset_names
from .canonical import (BONE_NAMES, CANONICAL_BONES, POINTS, CanonicalBone, CanonicalPose, RigMarkers,
                        canonical_from_track, from_blazepose33, from_coco17, from_h36m17, from_lw3d19, from_skeleton,
                        from_vitpose25, head_rotation_from_face, pose_from_rig, rig_markers, seen_frames, track_anchor,
                        track_feet_seen)
from .contact import FOOT_LOCK_MODES, ContactOptions, apply_foot_contact, contact_spans, detect_contact
from .rig import (Motion, RetargetError, Rig, default_rig, fk, matrix_to_roll, motion_from_pose,
                  vec_roll_to_matrix, world_to_local_rotations)
from .solve import (ANCHORS, ROOT_MOTION_MODES, RetargetOptions, RetargetReport, RetargetWarning, retarget,
                    source_from_rig, source_scale)

__all__ = [
    "ANCHORS", "BONE_NAMES", "CANONICAL_BONES", "FOOT_LOCK_MODES", "POINTS", "ROOT_MOTION_MODES",
    "BoneMap", "CanonicalBone", "CanonicalPose", "ContactOptions", "DetectReport", "Motion", "RetargetError",
    "RetargetOptions", "RetargetReport", "RetargetWarning", "Rig", "RigMarkers",
    "apply_foot_contact", "canonical_from_track", "classify_name", "contact_spans", "default_rig", "detect_bone_map",
    "detect_contact", "fk", "from_blazepose33", "from_coco17", "from_h36m17", "from_lw3d19", "from_skeleton",
    "from_vitpose25",
    "head_rotation_from_face", "load_preset", "matrix_to_roll", "motion_from_pose", "pose_from_rig", "preset_names",
    "retarget", "rig_markers", "seen_frames", "source_from_rig", "source_scale", "track_anchor", "track_feet_seen", "vec_roll_to_matrix",
    "world_to_local_rotations",
]
