"""The credential options that `recognize` and `auth` share, as one decorator.

Only Click here: `sttcli --help` must not import what the chain needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def credential_options(command: F) -> F:
    """Add --api-key, --iam-token, --sa-key-file, --profile, --iam-endpoint, --folder-id
    and --metadata-credentials to `command`."""
    options = [
        click.option(
            "--api-key", metavar="KEY", help="API key (better: YC_API_KEY in the environment)."
        ),
        click.option(
            "--iam-token",
            metavar="TOKEN",
            help="IAM token (better: YC_IAM_TOKEN or IAM_TOKEN in the environment).",
        ),
        click.option(
            "--sa-key-file",
            metavar="PATH",
            help="A service account's authorized key (JSON); env YC_SERVICE_ACCOUNT_KEY_FILE.",
        ),
        click.option(
            "--profile",
            metavar="NAME",
            help="yc CLI profile (default: YC_PROFILE, else the config's current one).",
        ),
        click.option(
            "--iam-endpoint",
            metavar="URL",
            help="IAM tokens endpoint for key exchanges; env YC_IAM_ENDPOINT.  "
            "[default: https://iam.api.cloud.yandex.net/iam/v1/tokens]",
        ),
        click.option(
            "--folder-id",
            envvar=["YC_FOLDER_ID", "FOLDER_ID"],
            show_envvar=True,
            default="",
            metavar="ID",
            help="Folder id, needed with a user's IAM token (default: the yc profile's).",
        ),
        click.option(
            "--metadata-credentials",
            is_flag=True,
            help="Ask the cloud VM's metadata service for a token even off a Yandex Cloud VM; "
            "env YC_METADATA_CREDENTIALS=1.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command
