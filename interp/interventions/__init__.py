"""Interventions: the one editing layer that circuits, steering, labeling and the atlas reuse.

Edits (:mod:`interp.interventions.edits`) — :class:`Patch` (an activation from
another run), :class:`Ablate` (zero, mean over a reference set, resample),
:class:`Add` (a vector), :class:`Clamp` (selected units), :class:`ProjectOut`
(a direction or subspace) — each at chosen positions, heads and units. Each is
a pure function on a tensor and a forward hook. :func:`intervene` applies any
number of them as a context manager that always removes its hooks;
:func:`run_with_interventions` returns the edited outputs; :func:`patch_from`
builds patches from a source run.
"""

from __future__ import annotations

from interp.interventions.apply import intervene, patch_from, run_with_interventions
from interp.interventions.edits import Ablate, Add, Clamp, Intervention, Patch, Positions, ProjectOut

__all__ = [
    "Intervention",
    "Patch",
    "Ablate",
    "Add",
    "Clamp",
    "ProjectOut",
    "Positions",
    "intervene",
    "run_with_interventions",
    "patch_from",
]
