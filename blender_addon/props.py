"""Scene and window-manager properties: what the panel edits and the operators read."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty)

from .apply import MAP_AUTO, MAP_FILE, MAP_STORED, POINTS_TRACK, PRESET_PREFIX, take_lift_sources
from .core_bridge import one_euro, retarget

DEFAULT_MIN_CUTOFF = float(one_euro.ONE_EURO_LANDMARKS.min_cutoff)
DEFAULT_BETA = float(one_euro.ONE_EURO_LANDMARKS.beta)

# Blender keeps only pointers to enum strings returned by a callback: they must outlive the call.
_MAP_ITEMS: list[tuple[str, str, str]] = []


def bone_map_items(self, context):
    if not _MAP_ITEMS:
        _MAP_ITEMS.extend([
            (MAP_AUTO, "Auto-detect", "Detect the map from the armature's bone names and shape when applying"),
            (MAP_STORED, "Stored on armature", "The map that Detect map or Load map stored on the armature"),
            (MAP_FILE, "Map file", "The bone map .json file below"),
        ])
        _MAP_ITEMS.extend((f"{PRESET_PREFIX}{n}", n.replace("_", " ").title(), f"Preset {n}")
                          for n in retarget.preset_names())
    return _MAP_ITEMS


# One list per set of lift names, kept for the session (the same reason as _MAP_ITEMS).
_POINTS_ITEMS: dict[tuple[str, ...], list[tuple[str, str, str]]] = {}


def points_items(self, context):
    """The track's own 3D points, then each lift the chosen Take stores (``rigcast lift``)."""
    sources = take_lift_sources(bpy.path.abspath(self.take_path))
    if sources not in _POINTS_ITEMS:
        _POINTS_ITEMS[sources] = [(POINTS_TRACK, "Track's own", "The 3D points the analysis found for the track")]
        _POINTS_ITEMS[sources] += [(s, f"Lift '{s}'", f"The track's 2D lifted to 3D, stored as {s!r} (rigcast "
                                                      f"lift; rigcast retarget --source {s})") for s in sources]
    return _POINTS_ITEMS[sources]


def _is_armature(self, obj) -> bool:
    return obj.type == 'ARMATURE'


FOOT_LOCK_ITEMS = [
    ('AUTO', "Auto", "Lock feet while they are planted and still"),
    ('ALWAYS', "Always", "Lock every detected contact"),
    ('NEVER', "Never", "No foot contact handling"),
    ('GROUNDING', "Grounding", "Keep planted feet on the floor without locking them"),
]


class RigcastSceneProps(bpy.types.PropertyGroup):
    footage_path: StringProperty(name="Footage", subtype='FILE_PATH', description="Video or image sequence to analyse")
    take_path: StringProperty(name="Take", subtype='FILE_PATH',
                              description="Take file (.take.npz) written by analysis, imported and applied; Apply also "
                                          "takes a BVH clip or an AMASS/SMPL .npz")
    target: PointerProperty(name="Armature", type=bpy.types.Object, poll=_is_armature,
                            description="Armature to apply the motion to")
    create_armature: BoolProperty(name="Create rigcast armature", default=False,
                                  description="Apply to a new rigcast armature instead of the chosen one")
    bone_map: EnumProperty(name="Bone map", items=bone_map_items,
                           description="Which rig bone plays which canonical bone")
    map_path: StringProperty(name="Map file", subtype='FILE_PATH', description="Bone map .json to load or save")
    min_cutoff: FloatProperty(name="Min cutoff", default=DEFAULT_MIN_CUTOFF, min=0.001, soft_max=10.0,
                              description="One Euro minimum cutoff (Hz): lower is smoother")
    beta: FloatProperty(name="Beta", default=DEFAULT_BETA, min=0.0, soft_max=10.0,
                        description="One Euro speed coefficient: higher lags less on fast moves")
    foot_lock: EnumProperty(name="Foot lock", items=FOOT_LOCK_ITEMS, default='AUTO')
    track_id: IntProperty(name="Track", default=-1, min=-1, description="Track id to apply; -1 for the longest track")
    points: EnumProperty(name="3D points", items=points_items,
                         description="Which 3D points of the Take's track to apply: its own, or a lift of its 2D "
                                     "stored in the Take (rigcast retarget --source)")
    use_face: BoolProperty(name="Head from face", default=True,
                           description="Turn the head with a face tracked on this body, when the take has one")
    source_rest: StringProperty(name="Source rest", default="auto",
                                description="The rest a BVH / AMASS clip's joint frames are measured from: auto (the "
                                            "file's own, or its median pose where that is no standing pose), zero "
                                            "(the file's own), tpose (arms out, legs down) or a frame number")
    target_rest: StringProperty(name="Target rest", default="zero",
                                description="The rest the armature's rotations are solved from: zero (its own), tpose "
                                            "or a frame of its current action; the keys stay on its own rest")
    bake: BoolProperty(name="Bake deform bones", default=False,
                       description="For rigs animated through controls (Rigify): key the deform bones' evaluated "
                                   "pose instead of the controls, their constraints removed")
    frame_offset: IntProperty(name="Frame offset", default=1,
                              description="Scene frame at which the footage's first frame plays")
    fbx_path: StringProperty(name="FBX", subtype='FILE_PATH', default="//rigcast.fbx")
    bvh_path: StringProperty(name="BVH", subtype='FILE_PATH', default="//rigcast.bvh")
    bvh_writer: EnumProperty(name="BVH writer", default='RIGCAST', items=[
        ('RIGCAST', "rigcast (Y-up)", "rigcast's writer: the usual Y-up BVH other tools expect"),
        ('BLENDER', "Blender", "Blender's exporter: armature space, Blender's Z-up axes"),
    ])


class RigcastJobProps(bpy.types.PropertyGroup):
    """The background analysis as the UI sees it (window manager: not saved, not undone)."""

    running: BoolProperty(default=False)
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype='FACTOR')
    status: StringProperty(name="Status")
