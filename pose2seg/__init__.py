"""pose2seg: the Pose2Seg reference model (torch + torchvision), built on :mod:`ochuman`."""

__version__ = "0.1.0"
