"""Bone maps: which rig bone plays which canonical bone, and finding that out.

A bone map is ``{"name": ..., "bones": {"canonical bone": "rig bone", ...}}``
on disk (presets live in ``assets/maps/*.json``).  Rig names are matched
exactly first, then ignoring namespaces (``mixamorig:``, ``mixamorig1:``,
``Armature|``) and case, so one preset serves every export of a rig family.

:func:`detect_bone_map` tries, in order: the presets (scored by how many of
their bones the rig has); bone names, normalised (prefixes, sides and
synonyms); and the rig's hierarchy and rest geometry.  Each later stage only
fills what the earlier ones left missing.  Given the rig's motion, a rest that
is no pose (bones missing, or legs not down and torso not up) is replaced by
the clip's median pose and the stages run again on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .canonical import BONE_NAMES, BONES
from .rig import RetargetError, Rig

FORMAT_VERSION = 1


def _strip_namespace(name: str) -> str:
    return re.split(r"[|:]", name)[-1]


def _key(name: str) -> str:
    return _strip_namespace(name).lower()


@dataclass(frozen=True, eq=False)
class BoneMap:
    """Canonical bone name -> rig bone name, for the canonical bones a rig has.

    ``absent``: canonical bones the rig family lacks by design (Rigify's
    controls carry the lower spine in ``torso``); they are not reported
    missing.  ``priority`` breaks ties between presets that fit a rig equally
    well (a generated Rigify rig holds both its DEF bones and its controls;
    the controls are what is animated).
    """

    name: str
    bones: Mapping[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()
    priority: int = 0

    def __post_init__(self) -> None:
        bones = dict(self.bones)
        object.__setattr__(self, "absent", tuple(self.absent))
        unknown = sorted((set(bones) | set(self.absent)) - set(BONE_NAMES))
        if unknown:
            raise RetargetError(f"bone map {self.name!r}: unknown canonical bones {unknown}; "
                                f"canonical bones are {list(BONE_NAMES)}")
        for k, v in bones.items():
            if not isinstance(v, str) or not v:
                raise RetargetError(f"bone map {self.name!r}: {k!r} must map to a bone name, got {v!r}")
        used: dict[str, str] = {}
        for k, v in bones.items():
            if v in used:
                raise RetargetError(f"bone map {self.name!r}: rig bone {v!r} is mapped twice ({used[v]!r}, {k!r})")
            used[v] = k
        ordered = {k: bones[k] for k in BONE_NAMES if k in bones}
        object.__setattr__(self, "bones", MappingProxyType(ordered))

    # --- files

    def to_dict(self) -> dict:
        d = {"name": self.name, "bones": dict(self.bones)}
        if self.absent:
            d["absent"] = list(self.absent)
        if self.priority:
            d["priority"] = self.priority
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BoneMap":
        if not isinstance(d, dict) or "bones" not in d or not isinstance(d["bones"], dict):
            raise RetargetError(f"a bone map must be {{'name': ..., 'bones': {{...}}}}, got {str(d)[:80]}")
        return cls(name=str(d.get("name", "")), bones=d["bones"], absent=tuple(d.get("absent", ())),
                   priority=int(d.get("priority", 0)))

    @classmethod
    def load(cls, path: str | Path) -> "BoneMap":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise RetargetError(f"cannot read bone map {path}: {e}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    # --- against a rig

    def resolve(self, rig: Rig) -> "BoneMap":
        """This map with names as spelled in ``rig`` (namespace- and case-insensitive); absent bones dropped."""
        exact = set(rig.bone_names)
        loose: dict[str, str] = {}
        for n in rig.bone_names:
            loose.setdefault(_key(n), n)
        out = {}
        for k, v in self.bones.items():
            if v in exact:
                out[k] = v
            elif _key(v) in loose:
                out[k] = loose[_key(v)]
        return BoneMap(self.name, out, self.absent, self.priority)

    def missing(self, rig: Rig | None = None) -> tuple[str, ...]:
        """Canonical bones this map leaves out (or maps to bones ``rig`` lacks)."""
        have = self.bones if rig is None else self.resolve(rig).bones
        return tuple(b for b in BONE_NAMES if b not in have and b not in self.absent)

    def indices(self, rig: Rig) -> dict[str, int]:
        """Canonical bone -> bone index in ``rig``, for the mapped bones ``rig`` has."""
        return {k: rig.index(v) for k, v in self.resolve(rig).bones.items()}

    def driven(self, rig: Rig) -> tuple[str, ...]:
        """Rig bones of this map whose pose constraints set (``rig.driven``): keying them moves nothing."""
        return tuple(v for v in self.resolve(rig).bones.values() if v in rig.driven)

    def with_bones(self, bones: Mapping[str, str | None]) -> "BoneMap":
        """A new map with ``bones`` added or replaced (a value of None removes the entry)."""
        merged = dict(self.bones)
        for k, v in bones.items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return BoneMap(self.name, merged, tuple(a for a in self.absent if a not in merged), self.priority)

    def __len__(self) -> int:
        return len(self.bones)


# --------------------------------------------------------------------------- presets


def maps_dir() -> Path:
    """Folder of the bone-map presets (``assets/maps``)."""
    from ..model_store import assets_dir

    return assets_dir() / "maps"


def preset_names() -> tuple[str, ...]:
    """Names of the shipped bone-map presets (file stems in ``assets/maps``)."""
    return tuple(sorted(p.stem for p in maps_dir().glob("*.json")))


def load_preset(name: str) -> BoneMap:
    """The shipped bone-map preset ``name`` (``mixamo``, ``rigify_control`` ...)."""
    path = maps_dir() / f"{name}.json"
    if not path.is_file():
        raise RetargetError(f"no bone-map preset {name!r}; presets are {list(preset_names())}")
    return BoneMap.load(path)


def load_presets() -> tuple[BoneMap, ...]:
    """Every shipped bone-map preset."""
    return tuple(load_preset(n) for n in preset_names())


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class DetectReport:
    """What :func:`detect_bone_map` found: the method per bone, and what is missing."""

    rig: str
    method: str
    found: tuple[tuple[str, str, str], ...]  # (canonical bone, rig bone, how)
    missing: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"bone map for rig {self.rig!r}: {self.method}, {len(self.found)}/{len(BONE_NAMES)} canonical bones"]
        lines += [f"  {c:<12} <- {b}  ({how})" for c, b, how in self.found]
        if self.missing:
            lines.append(f"  missing: {', '.join(self.missing)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# --------------------------------------------------------------------------- hierarchy helpers


def _depths(rig: Rig) -> np.ndarray:
    depth = np.zeros(rig.num_bones, dtype=int)
    for b in rig.order:
        p = rig.parents[b]
        depth[b] = 0 if p < 0 else depth[p] + 1
    return depth


def _is_ancestor(rig: Rig, a: int, b: int) -> bool:
    """Whether ``a`` is a proper ancestor of ``b``."""
    return a in rig.ancestors(b)


def _lca(rig: Rig, a: int, b: int) -> int:
    chain_a = [a] + rig.ancestors(a)
    for x in [b] + rig.ancestors(b):
        if x in chain_a:
            return x
    return -1


def _path_down(rig: Rig, top: int, bottom: int) -> list[int]:
    """Bones from ``top`` (included) down to ``bottom`` (included), or [] if top is not above bottom."""
    chain = [bottom] + rig.ancestors(bottom)
    if top not in chain:
        return []
    return list(reversed(chain[: chain.index(top) + 1]))


def _gap_penalty(rig: Rig, mapping: dict[str, int]) -> int:
    """How far mapped bones sit from their mapped canonical parents (extra bones between, or not below at all)."""
    penalty = 0
    for c, b in mapping.items():
        parent = BONES[c].parent
        while parent is not None and parent not in mapping:
            parent = BONES[parent].parent
        if parent is None:
            continue
        anc = rig.ancestors(b)
        penalty += anc.index(mapping[parent]) if mapping[parent] in anc else 5
    return penalty


# --------------------------------------------------------------------------- names

_PREFIXES = ("def-", "def_", "org-", "org_", "mixamorig", "bip001", "bip01", "m_avg_", "f_avg_", "cc_base_",
             "valvebiped.bip01_", "jnt_", "bn_")
_SUFFIXES = ("_jnt", "_joint", "_bone", "_bn", "_ctrl")
_EXCLUDE = {"twist", "roll", "ik", "pole", "target", "mch", "tweak", "end", "nub", "top", "helper", "corrective",
            "parent", "socket", "prop", "weapon", "vb", "share", "site", "tip", "pivot", "hinge", "master", "eye",
            "jaw", "breast", "ear", "tongue", "teeth", "thumb", "index", "middle", "ring", "pinky", "finger",
            "heel", "metacarpal", "palm"}
_NOISE = {"fk", "jnt", "bone", "bn", "def", "org", "ctrl", "con", "bind", "skin", "deform", "bend", "skeleton"}
"""Words that say nothing of the segment (``skeleton``: OptiTrack Motive names bones ``Skeleton1_LThigh``)."""
_LEFT, _RIGHT = {"l", "left", "lf", "lft"}, {"r", "right", "rt", "rgt"}

_SYNONYMS: dict[str, set[str]] = {
    "shoulder": {"clavicle", "collar", "clav", "shoulder", "collarbone"},
    "upper_arm": {"upperarm", "arm", "uparm", "shldr", "humerus"},
    "lower_arm": {"forearm", "lowerarm", "elbow", "loarm", "radius"},
    "hand": {"hand", "wrist"},
    "thigh": {"thigh", "upleg", "upperleg", "femur", "hip", "uleg"},
    "shin": {"shin", "calf", "leg", "lowerleg", "knee", "loleg", "tibia", "lleg"},
    "foot": {"foot", "ankle"},
    "toes": {"toe", "toes", "toebase", "ball", "toesbase"},
}
_CENTRE = {"hips": {"hips", "hip", "pelvis"}, "neck": {"neck"}, "head": {"head"}, "root": {"root"}}


def _tokens(name: str) -> list[str]:
    n = _strip_namespace(name)
    low = n.lower()
    for p in _PREFIXES:
        if low.startswith(p):
            n = n[len(p):]
            low = low[len(p):]
            break
    for s in _SUFFIXES:
        if low.endswith(s):
            n = n[: -len(s)]
            break
    # OptiTrack Motive's short limb names: LUArm / LFArm are the upper arm and forearm (LF is not "left").
    n = re.sub(r"(^|[^A-Za-z])([LR])([UF])Arm", lambda m: m[1] + m[2] + ("Upper" if m[3] == "U" else "Fore") + "Arm", n)
    n = re.sub(r"([a-z])([A-Z])", r"\1 \2", n)  # camelCase
    n = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", n)  # LHip -> L Hip
    n = re.sub(r"([A-Za-z])(\d)", r"\1 \2", n)
    return [t for t in re.split(r"[\s_.\-]+", n.lower()) if t]


def classify_name(name: str) -> tuple[str, str, int]:
    """(side 'L'/'R'/'', base word, segment index) of a bone name, after stripping prefixes and namespaces."""
    side, words, index = "", [], 0
    for t in _tokens(name):
        if t in _LEFT and not side:
            side = "L"
        elif t in _RIGHT and not side:
            side = "R"
        elif t.isdigit():
            index = index or int(t)
        elif t not in _NOISE:
            words.append(t)
    return side, "".join(words), index


def _detect_by_names(rig: Rig) -> tuple[dict[str, int], list[str]]:
    notes: list[str] = []
    depth = _depths(rig)
    tokens = [_tokens(n) for n in rig.bone_names]
    info = [classify_name(n) for n in rig.bone_names]
    cands: dict[str, list[int]] = {}
    for b, (side, base, _index) in enumerate(info):
        if _EXCLUDE & set(tokens[b]) or not base:
            continue
        if side:
            for slot, words in _SYNONYMS.items():
                if base in words:
                    cands.setdefault(f"{slot}.{side}", []).append(b)
        else:
            for slot, words in _CENTRE.items():
                if base in words:
                    cands.setdefault(slot, []).append(b)
    for s in ("L", "R"):
        bases = {info[b][1]: b for key in cands if key.endswith("." + s) for b in cands[key]}
        # "shoulder" next to a collar/clavicle is the upper arm (SMPL's L_Shoulder).
        if "shoulder" in bases and ({"collar", "clavicle", "clav"} & set(bases)):
            b = bases["shoulder"]
            cands[f"shoulder.{s}"].remove(b)
            cands.setdefault(f"upper_arm.{s}", []).append(b)
        # "foot" below an "ankle" is the toes (SMPL's L_Foot).
        if "foot" in bases and "ankle" in bases and _is_ancestor(rig, bases["ankle"], bases["foot"]):
            b = bases["foot"]
            cands[f"foot.{s}"].remove(b)
            cands.setdefault(f"toes.{s}", []).append(b)
        # "leg" below an "upleg"/"thigh" is the shin; a lone "leg" is the thigh.
        if "leg" in bases:
            b = bases["leg"]
            thighs = [t for t in cands.get(f"thigh.{s}", []) if t != b]
            if not any(_is_ancestor(rig, t, b) for t in thighs):
                cands[f"shin.{s}"].remove(b)
                cands.setdefault(f"thigh.{s}", []).append(b)

    def topmost(options: list[int], below: int | None = None) -> int | None:
        ok = [b for b in options if below is None or _is_ancestor(rig, b, below)] or options
        return min(ok, key=lambda b: (depth[b], b)) if ok else None

    # Each limb from its end up: the topmost hand candidate, then the topmost
    # forearm candidate above it (skipping twist segments below), and so on.
    found: dict[str, int] = {}
    for s in ("L", "R"):
        for chain in (("hand", "lower_arm", "upper_arm", "shoulder"), ("toes", "foot", "shin", "thigh")):
            below = None
            for slot in chain:
                b = topmost([b for b in cands.get(f"{slot}.{s}", []) if b not in found.values()], below)
                if b is not None:
                    found[f"{slot}.{s}"] = b
                    below = b
    _segments_by_child(rig, found, notes)
    for slot in ("neck", "head"):
        b = topmost([b for b in cands.get(slot, []) if b not in found.values()])
        if b is not None:
            found[slot] = b
    hips = None
    if "thigh.L" in found and "thigh.R" in found:
        hips = _lca(rig, found["thigh.L"], found["thigh.R"])
        hips = hips if hips >= 0 else None
    if hips is None:
        hips = topmost(cands.get("hips", []) or cands.get("root", []))
    if hips is not None:
        found["hips"] = hips
    _structural_torso(rig, found, notes)
    return found, notes


def _segments_by_child(rig: Rig, found: dict[str, int], notes: list[str]) -> None:
    """A limb joint's segment runs to its child: a joint whose child is the elbow starts the upper arm.

    Skeletons named for joints rather than segments (DeepMimic's
    ``left_shoulder`` -> ``left_elbow``, with no clavicle) otherwise read the
    shoulder joint as a clavicle.  Where the upper arm is missing and the
    elbow's parent was taken for the clavicle, that joint moves to the upper
    arm and the clavicle is left to the hierarchy (geometry) stage.
    """
    for s in ("L", "R"):
        elbow, shoulder = found.get(f"lower_arm.{s}"), found.get(f"shoulder.{s}")
        if f"upper_arm.{s}" in found or elbow is None or shoulder is None or rig.parents[elbow] != shoulder:
            continue
        found[f"upper_arm.{s}"] = found.pop(f"shoulder.{s}")
        notes.append(f"upper_arm.{s} <- {rig.bone_names[shoulder]}: guessed from the hierarchy, its child is the "
                     f"elbow {rig.bone_names[elbow]!r}, so this joint starts the upper arm (named for the joint, "
                     f"not the segment)")


def _structural_torso(rig: Rig, found: dict[str, int], notes: list[str]) -> None:
    """Chest = where the arms branch, spine = the first bone above the hips toward it; neck/head if still unknown."""
    arm_roots = [found.get(f"shoulder.{s}", found.get(f"upper_arm.{s}")) for s in ("L", "R")]
    hips = found.get("hips")
    if "chest" not in found and None not in arm_roots:
        chest = _lca(rig, arm_roots[0], arm_roots[1])
        below_hips = hips is None or _is_ancestor(rig, hips, chest)
        if chest >= 0 and chest != hips and chest not in found.values() and below_hips:
            found["chest"] = chest
    if "spine" not in found and hips is not None and "chest" in found:
        path = _path_down(rig, hips, found["chest"])
        if len(path) > 2 and path[1] not in found.values():
            found["spine"] = path[1]
    if "chest" in found and ("neck" not in found or "head" not in found):
        chain = _up_chain(rig, found["chest"], exclude=set(found.values()))
        if chain:
            if "neck" not in found and "head" not in found:
                if len(chain) == 1:
                    found["head"] = chain[0]
                else:
                    found["neck"] = chain[0]
                    found["head"] = _pick_head(rig, chain)
            elif "head" not in found:
                rest = [b for b in chain if b != found["neck"] and _is_ancestor(rig, found["neck"], b)]
                if rest:
                    found["head"] = _pick_head(rig, [found["neck"]] + rest)
            notes.append("neck/head placed from the hierarchy above the chest")


def _subtree_points(rig: Rig, b: int) -> np.ndarray:
    bones = [b] + rig.descendants(b)
    return np.concatenate([rig.head_xyz[bones], rig.tail_xyz[bones]])


def _up_chain(rig: Rig, start: int, exclude: set[int]) -> list[int]:
    """Bones above ``start`` following, at each step, the child whose subtree reaches highest (Z)."""
    chain, b = [], start
    while True:
        kids = [c for c in rig.children(b) if c not in exclude]
        if not kids:
            return chain
        b = max(kids, key=lambda c: (_subtree_points(rig, c)[:, 2].max(), -c))
        if _subtree_points(rig, b)[:, 2].max() < rig.head_xyz[start, 2]:
            return chain
        chain.append(b)


def _pick_head(rig: Rig, chain: list[int]) -> int:
    """The head bone in a neck -> ... -> head-top chain: the bone starting about a third of the way up it.

    The neck base is chain[0]'s head, the top the chain's highest point; an
    adult's skull base sits about a third of the way from one to the other
    (neck ~10 cm, head ~22 cm), above any second neck bone and below head-top
    end bones.
    """
    z0 = rig.head_xyz[chain[0], 2]
    top = max(rig.tail_xyz[chain, 2].max(), rig.head_xyz[chain, 2].max())
    span = max(top - z0, 1e-6)
    return min(chain[1:], key=lambda b: abs((rig.head_xyz[b, 2] - z0) / span - 1.0 / 3.0))


# --------------------------------------------------------------------------- geometry


def _left_axis(rig: Rig, legs: list[int]) -> np.ndarray:
    """The character's left (unit, horizontal) from where its feet point: Z up, left = up x forward.

    Forward is the horizontal part of the last bone of each leg (the foot or toes, down the lowest-reaching
    chain), summed over both legs: the feet point forward in any standing pose.  Without a clear answer the
    rest's usual facing (-Y, so left is +X) is kept.
    """
    forward = np.zeros(3)
    for root in legs:
        chain = _main_chain(rig, root, lambda c: -_subtree_points(rig, c)[:, 2].min())
        last = max((b for b in chain if rig.length[b] > 1e-6), key=chain.index, default=None)
        if last is not None:
            forward += (rig.tail_xyz[last] - rig.head_xyz[last]) / rig.length[last]
    forward[2] = 0.0
    if np.linalg.norm(forward) < 0.5:
        return np.array([1.0, 0.0, 0.0])
    return np.cross([0.0, 0.0, 1.0], forward / np.linalg.norm(forward))


def _detect_by_geometry(rig: Rig) -> tuple[dict[str, int], list[str]]:
    """Bones from the hierarchy and rest shape alone: Z up, left from where the feet point (+X facing -Y).

    Arms are the two large side branches of the spine, out to the sides or hanging down (a median pose),
    each segment found by length along the chain, so bent elbows do not matter."""
    notes: list[str] = []
    all_pts = np.concatenate([rig.head_xyz, rig.tail_xyz])
    height = float(np.ptp(all_pts[:, 2])) or 1.0
    found: dict[str, int] = {}

    def kind(b: int, c: int) -> str:
        pts = _subtree_points(rig, c)
        z0 = rig.head_xyz[b, 2]
        if pts[:, 2].min() < z0 - 0.3 * height:
            return "down"
        if pts[:, 2].max() > z0 + 0.2 * height:
            return "up"
        return "other"

    # The hips: two branches down and one up.  Of several such bones (arms hanging in a motion frame make the
    # chest one), the one whose branches reach lowest, the floor; then the deepest.
    candidates = [b for b in range(rig.num_bones)
                  if [kind(b, c) for c in rig.children(b)].count("down") >= 2
                  and [kind(b, c) for c in rig.children(b)].count("up") >= 1]

    def reach_down(b: int) -> float:
        return min(_subtree_points(rig, c)[:, 2].min() for c in rig.children(b) if kind(b, c) == "down")

    hips = min(candidates, key=lambda b: (round(reach_down(b) / height, 2), -len(rig.ancestors(b))), default=None)
    if hips is None:
        notes.append("geometry: no bone with two legs below and a spine above; nothing found")
        return found, notes
    found["hips"] = hips
    legs = sorted([c for c in rig.children(hips) if kind(hips, c) == "down"],
                  key=lambda c: _subtree_points(rig, c)[:, 2].min())[:2]
    left = _left_axis(rig, legs)
    legs.sort(key=lambda c: -(_subtree_points(rig, c) @ left).mean())  # left first
    for s, root in zip(("L", "R"), legs):
        _geometry_leg(rig, root, s, height, found)

    spine_root = max((c for c in rig.children(hips) if kind(hips, c) == "up"),
                     key=lambda c: _subtree_points(rig, c)[:, 2].max())
    up = [spine_root] + _up_chain(rig, spine_root, exclude=set())
    chest = None
    for b in up:
        side_kids = []
        for c in rig.children(b):
            if c in up:
                continue
            pts = _subtree_points(rig, c) - rig.head_xyz[b]
            # An arm reaches far from the chest, out to its side or hanging down beside the body.
            if np.linalg.norm(pts, axis=1).max() > 0.2 * height:
                side_kids.append((c, float((pts @ left).mean())))
        side_kids.sort(key=lambda cr: -cr[1])
        if len(side_kids) >= 2 and side_kids[0][1] > 0 > side_kids[-1][1]:
            chest = b
            _geometry_arm(rig, side_kids[0][0], "L", b, height, found, left)
            _geometry_arm(rig, side_kids[-1][0], "R", b, height, found, left)
            break
    if chest is None:
        notes.append("geometry: no bone with arms branching sideways")
        return found, notes
    found["chest"] = chest
    if up.index(chest) > 0:
        found["spine"] = up[0]
    above = up[up.index(chest) + 1:]
    if len(above) == 1:
        found["head"] = above[0]
    elif len(above) > 1:
        found["neck"] = above[0]
        found["head"] = _pick_head(rig, above)
    return found, notes


def _main_chain(rig: Rig, root: int, score) -> list[int]:
    chain, b = [root], root
    while rig.children(b):
        b = max(rig.children(b), key=score)
        chain.append(b)
    return chain


def _geometry_leg(rig: Rig, root: int, s: str, height: float, found: dict[str, int]) -> None:
    chain = _main_chain(rig, root, lambda c: -_subtree_points(rig, c)[:, 2].min())
    direction = (rig.tail_xyz[chain] - rig.head_xyz[chain]) / rig.length[chain, None]
    # The thigh: the first long bone pointing down (about 0.25 x stature; CMU's LHipJoint, 0.1, runs from the
    # hips' centre down to the hip joint); a thigh split in two twist halves is found at 0.1.
    thigh = next((i for i, b in enumerate(chain) if direction[i, 2] < -0.7 and rig.length[b] > 0.15 * height),
                 None)
    if thigh is None:
        thigh = next((i for i, b in enumerate(chain) if direction[i, 2] < -0.7 and rig.length[b] > 0.1 * height),
                     None)
    if thigh is None:
        return
    # The foot: past the shin, the first short bone (under 0.15 x stature) that does not point down, so a
    # knee bent in a motion frame is not taken for it.
    foot = next((i for i in range(thigh + 2, len(chain))
                 if abs(direction[i, 2]) < 0.8 and rig.length[chain[i]] < 0.15 * height), None)
    found[f"thigh.{s}"] = chain[thigh]
    if foot is None:
        return
    found[f"foot.{s}"] = chain[foot]
    between = range(thigh + 1, foot)
    if between:
        middle = 0.5 * (rig.head_xyz[chain[thigh]] + rig.head_xyz[chain[foot]])
        found[f"shin.{s}"] = chain[min(between, key=lambda i: np.linalg.norm(rig.head_xyz[chain[i]] - middle))]
    # The toes continue the foot's direction (a heel bone branches off sideways or back).
    toes = rig.children(chain[foot])
    if toes:
        foot_dir = direction[foot]
        found[f"toes.{s}"] = max(toes, key=lambda c: np.dot(rig.tail_xyz[c] - rig.head_xyz[c], foot_dir)
                                 / rig.length[c])


def _geometry_arm(rig: Rig, root: int, s: str, chest: int, height: float, found: dict[str, int],
                  left: np.ndarray | None = None) -> None:
    # Follow the child reaching farthest out to this side (``left``, +X by default, for the left).
    left = np.array([1.0, 0.0, 0.0]) if left is None else left
    sign = 1.0 if s == "L" else -1.0
    chain = _main_chain(rig, root, lambda c: (sign * _subtree_points(rig, c) @ left).max())
    start = 0
    if abs((rig.head_xyz[chain[0]] - rig.head_xyz[chest]) @ left) < 0.07 * height and len(chain) > 1:
        found[f"shoulder.{s}"] = chain[0]
        start = 1
    # The hand is the bone the fingers branch from (3+ children); without
    # fingers, the bone starting nearest 0.32 x stature from the shoulder
    # along the chain (upper arm + forearm, Drillis-Contini), so a bent elbow
    # does not shorten the reach.
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(rig.head_xyz[chain], axis=0), axis=1))])
    along = along - along[start]
    hand = next((i for i in range(start + 1, len(chain)) if len(rig.children(chain[i])) >= 3), None)
    if hand is None:
        hand = start + 1 + int(np.argmin(np.abs(along[start + 1:] - 0.32 * height))) if len(chain) > start + 1 \
            else start
    if hand <= start:
        return
    found[f"upper_arm.{s}"] = chain[start]
    found[f"hand.{s}"] = chain[hand]
    between = range(start + 1, hand)
    if between:
        # The elbow sits 56 % of the way from shoulder to wrist (upper arm 0.186,
        # forearm 0.146 of stature, Drillis-Contini), along the chain.
        found[f"lower_arm.{s}"] = chain[min(between, key=lambda i: abs(along[i] - 0.56 * along[hand]))]


# --------------------------------------------------------------------------- detection


def detect_bone_map(rig: Rig, presets: tuple[BoneMap, ...] | None = None, motion=None
                    ) -> tuple[BoneMap, DetectReport]:
    """Find the bone map of ``rig``: presets first, then names, then hierarchy and rest geometry.

    ``motion`` (a :class:`~rigcast.retarget.rig.Motion` of ``rig``, optional): the motion is a cue where the
    rest is none: when bones are missing, or the bones found do not stand (legs down, torso up) in the rest,
    as in exports whose offsets all lie along each joint's local x, detection runs again on the clip's median
    pose (:func:`rigcast.retarget.rest.median_pose_frame`) and keeps whichever finds more.

    Returns the map (names as spelled in the rig) and a report of what was
    found by which method and which canonical bones are missing.
    """
    presets = load_presets() if presets is None else presets
    bone_map, report = _detect(rig, presets)
    if motion is None or motion.num_frames == 0:
        return bone_map, report
    from .rest import median_pose_frame, rest_not_standing, rig_with_rest
    from .rig import fk

    indices = bone_map.indices(rig)
    reason = "no hips found" if "hips" not in indices else rest_not_standing(rig, indices)
    if reason is None and not report.missing:
        return bone_map, report
    reason = reason or f"{len(report.missing)} canonical bones not found"
    frame = median_pose_frame(rig, motion)
    posed = rig_with_rest(rig, fk(rig, motion.select(slice(frame, frame + 1)))[0])
    again, again_report = _detect(posed, presets)
    if len(again.bones) <= len(bone_map.bones):
        return bone_map, report
    note = (f"the rest gave {len(bone_map.bones)} canonical bones ({reason}): bones found in the clip's median "
            f"pose, frame {frame}, instead")
    return again, replace(again_report, rig=rig.name, method=again_report.method + "+motion",
                          notes=again_report.notes + (note,))


def _detect(rig: Rig, presets: tuple[BoneMap, ...]) -> tuple[BoneMap, DetectReport]:
    """:func:`detect_bone_map` on the rest alone."""
    notes: list[str] = []
    if rig.driven:
        notes.append(f"{len(rig.driven)} bones are driven by constraints (their own keys would move nothing) and "
                     f"are not used, e.g. {', '.join(sorted(rig.driven)[:3])}")
    found: dict[str, tuple[int, str]] = {}
    methods: list[str] = []

    # Presets: the best share of the preset found in the rig, then priority,
    # then count, then the fewest extra bones between mapped parent and child.
    best = None
    for preset in presets:
        resolved = {c: b for c, b in preset.indices(rig).items() if rig.bone_names[b] not in rig.driven}
        if len(resolved) < 8 or len(resolved) < 0.6 * len(preset):
            continue
        score = (round(len(resolved) / len(preset), 3), preset.priority, len(resolved), -_gap_penalty(rig, resolved))
        if best is None or score > best[0]:
            best = (score, preset, resolved)
    absent: tuple[str, ...] = ()
    if best is not None:
        found.update({c: (b, f"preset {best[1].name}") for c, b in best[2].items()})
        methods.append(f"preset:{best[1].name}")
        absent = best[1].absent

    for method, detector in (("names", _detect_by_names), ("geometry", _detect_by_geometry)):
        if len(found) + len(absent) == len(BONE_NAMES):
            break
        try_map, try_notes = detector(rig)
        used = {b for b, _ in found.values()}
        added = 0
        for c, b in try_map.items():
            # Later stages only fill gaps, and never with helper bones (MCH, IK, twist ...).
            helper = bool(_EXCLUDE & set(_tokens(rig.bone_names[b]))) or rig.bone_names[b] in rig.driven
            if c not in found and c not in absent and b not in used and not helper:
                found[c] = (b, method)
                used.add(b)
                added += 1
        if added:
            methods.append(method)
            notes += try_notes

    for a, b in (("upper_arm.L", "upper_arm.R"), ("thigh.L", "thigh.R")):
        if a in found and b in found and rig.head_xyz[found[a][0], 0] < rig.head_xyz[found[b][0], 0]:
            notes.append(f"{a} lies at -X of {b}: the rig does not face -Y, or its sides are named the other way")
    ordered = [c for c in BONE_NAMES if c in found]
    bone_map = BoneMap(methods[0].split(":")[-1] if methods else "empty",
                       {c: rig.bone_names[found[c][0]] for c in ordered}, absent)
    report = DetectReport(rig=rig.name, method="+".join(methods) or "nothing found",
                          found=tuple((c, rig.bone_names[found[c][0]], found[c][1]) for c in ordered),
                          missing=bone_map.missing(rig), notes=tuple(notes))
    return bone_map, report
