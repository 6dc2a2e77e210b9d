"""The task lifecycle of DESIGN §4 drawn as a state diagram for the console, with the
path a task took (from its TaskEvent rows) highlighted. Pure layout: no queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import TaskState

BOX_W, BOX_H = 112, 34

WIDTH, HEIGHT = 620, 230
# Box centres: the main line left to right, `scheduled` below it, `cancelled` above, the
# two ends on the right.
POSITIONS: dict[str, tuple[int, int]] = {
    TaskState.INITIALIZED: (62, 115),
    TaskState.TASKED: (205, 115),
    TaskState.SCHEDULED: (275, 200),
    TaskState.PUSHING: (350, 115),
    TaskState.COMPLETED: (555, 55),
    TaskState.FAILED: (555, 175),
    TaskState.CANCELLED: (275, 28),
}

EDGES: list[tuple[str, str]] = [
    (TaskState.INITIALIZED, TaskState.TASKED),
    (TaskState.TASKED, TaskState.PUSHING),
    (TaskState.TASKED, TaskState.SCHEDULED),
    (TaskState.SCHEDULED, TaskState.PUSHING),
    (TaskState.PUSHING, TaskState.COMPLETED),
    (TaskState.PUSHING, TaskState.FAILED),
    (TaskState.INITIALIZED, TaskState.CANCELLED),
    (TaskState.TASKED, TaskState.CANCELLED),
    (TaskState.SCHEDULED, TaskState.CANCELLED),
    (TaskState.PUSHING, TaskState.CANCELLED),
]


@dataclass
class Node:
    state: str
    label: str
    x: float
    y: float
    cx: float
    cy: float
    visited: bool
    current: bool


@dataclass
class Edge:
    source: str
    target: str
    x1: float
    y1: float
    x2: float
    y2: float
    taken: bool


def _clip(cx: float, cy: float, dx: float, dy: float) -> tuple[float, float]:
    """Where the ray from a box centre along (dx, dy) leaves the box (plus a margin)."""
    half_w, half_h = BOX_W / 2 + 3, BOX_H / 2 + 3
    scale = min(half_w / abs(dx) if dx else float("inf"), half_h / abs(dy) if dy else float("inf"))
    return cx + dx * scale, cy + dy * scale


def diagram(state: str, events: list[Any]) -> dict[str, Any]:
    """Nodes and edges of the lifecycle; `taken` edges and `visited` nodes come from the
    events (from_state -> to_state), `current` is the task's state now."""
    taken = {(e.from_state, e.to_state) for e in events if e.from_state != e.to_state}
    visited = {s for pair in taken for s in pair} | {state}
    if not events:
        visited.add(TaskState.INITIALIZED)
    labels = dict(TaskState.choices)
    nodes = [
        Node(
            state=s,
            label=str(labels[s]),
            x=x - BOX_W / 2,
            y=y - BOX_H / 2,
            cx=x,
            cy=y,
            visited=s in visited,
            current=s == state,
        )
        for s, (x, y) in POSITIONS.items()
    ]
    edges = []
    for source, target in EDGES:
        (sx, sy), (tx, ty) = POSITIONS[source], POSITIONS[target]
        x1, y1 = _clip(sx, sy, tx - sx, ty - sy)
        x2, y2 = _clip(tx, ty, sx - tx, sy - ty)
        edges.append(
            Edge(
                source=source,
                target=target,
                x1=round(x1, 1),
                y1=round(y1, 1),
                x2=round(x2, 1),
                y2=round(y2, 1),
                taken=(source, target) in taken,
            )
        )
    # Taken edges last, so they are drawn over the others.
    edges.sort(key=lambda e: e.taken)
    return {
        "nodes": nodes,
        "edges": edges,
        "width": WIDTH,
        "height": HEIGHT,
        "box_w": BOX_W,
        "box_h": BOX_H,
    }
