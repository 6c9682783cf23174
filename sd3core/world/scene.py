"""The synthetic world's scene description: bodies on a ground plane and a perspective camera.

World frame: metres, y up (the ground is the plane y = 0), x and z horizontal.
Each body is a solid of revolution or a yawed square solid standing upright on its base:

| shape    | geometry (w = ``half_width``, H = ``height``, base at ``base[1]``)                  |
|----------|--------------------------------------------------------------------------------------|
| cube     | square box, side 2w (H = 2w), yawed by ``yaw`` about the vertical axis               |
| sphere   | ball of radius w (H = 2w)                                                            |
| cylinder | vertical cylinder, radius w, height H                                                |
| cone     | vertical cone, base radius w, apex H above the base                                  |
| pyramid  | square base of side 2w yawed by ``yaw``, apex H above the base                       |
| bucket   | open-top cylinder, outer radius w, height H, wall ``BUCKET_WALL * w``, floor as thick |

``yaw`` turns a body about +y (radians): its local x axis goes to world (cos yaw, 0, -sin yaw).
The world frame is right-handed, so a camera looking along +z sees world +x on its left.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BUCKET_WALL = 0.12  # wall and floor thickness of a bucket, as a fraction of its half width


@dataclass(frozen=True)
class Body:
    """One object of the world.

    ``base``: (x, y, z) world-frame centre of the body's bottom face, metres.
    ``support``: index of the body this one rests on or in, -1 for the ground.
    """
    shape: str
    colour: str
    size: str
    material: str
    base: tuple[float, float, float]
    half_width: float
    height: float
    yaw: float = 0.0
    support: int = -1

    @property
    def top(self) -> float:
        """World y of the body's highest point, metres."""
        return self.base[1] + self.height

    @property
    def footprint_radius(self) -> float:
        """Radius of a vertical cylinder around the body that contains it, metres."""
        return self.half_width * (np.sqrt(2.0) if self.shape in ("cube", "pyramid") else 1.0)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``eye`` at ``target`` (world frame, metres).

    ``fov_deg`` is the vertical (= horizontal, square images) field of view in degrees.
    """
    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_deg: float = 40.0

    def basis(self) -> np.ndarray:
        """(3, 3) rows = right, up, forward unit vectors of the camera (world frame)."""
        eye, target = np.asarray(self.eye, float), np.asarray(self.target, float)
        forward = (target - eye) / np.linalg.norm(target - eye)
        if abs(forward[1]) > 0.999:
            raise ValueError("camera: looking straight up or down leaves 'right' undefined")
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return np.stack([right, up, forward])

    def gravity_basis(self) -> np.ndarray:
        """(3, 3) rows = right, world up, horizontal forward: the axes of the 3DSG frame."""
        right, _, forward = self.basis()
        flat = np.array([forward[0], 0.0, forward[2]])
        flat /= np.linalg.norm(flat)
        return np.stack([right, np.array([0.0, 1.0, 0.0]), flat])

    def to_graph_frame(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) gravity-aligned camera frame (x right, y up, z forward)."""
        return (np.asarray(points, float) - np.asarray(self.eye, float)) @ self.gravity_basis().T

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) image coordinates in 0-1 (x right, y down).

        Points behind the camera give non-finite coordinates.
        """
        cam = (np.asarray(points, float) - np.asarray(self.eye, float)) @ self.basis().T
        f = 0.5 / np.tan(np.radians(self.fov_deg) / 2.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(cam[:, 2] > 1e-6, cam[:, 2], np.nan)
            u = 0.5 + f * cam[:, 0] / z
            v = 0.5 - f * cam[:, 1] / z
        return np.stack([u, v], axis=1)


@dataclass(frozen=True)
class Scene:
    """Bodies, a camera and a unit vector pointing from the scene towards the (directional) light."""
    bodies: tuple[Body, ...]
    camera: Camera
    light_dir: tuple[float, float, float]
    seed: int
