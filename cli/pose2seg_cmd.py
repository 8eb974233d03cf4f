"""``pose2seg``: the Pose2Seg reference model (templates, prediction and training commands)."""
from __future__ import annotations

import click

from cli.common import Group, verbosity_options


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ochuman-toolkit")
@verbosity_options
def main():
    """Pose2Seg: human instance segmentation from poses (CVPR 2019)."""
