"""`claims-platform model-card VERSION`: print a registered version's model card (Markdown, or --html)."""

from __future__ import annotations

import argparse
import sys

from claims_platform.cli.errors import UserError
from claims_platform.core import settings


def cmd_model_card(args: argparse.Namespace) -> int:
    """Print the card the version's training wrote (and its champion decision completed)."""
    from mlflow.exceptions import MlflowException

    from claims_platform.core.redaction import redact_url
    from claims_platform.models.cards import ModelCardMissing, read_model_card
    from claims_platform.models.registry import ModelRegistry

    settings.configure_service_clients()
    tracking_uri = settings.default_mlflow_tracking_uri()
    registry = ModelRegistry(tracking_uri=tracking_uri, model_name=settings.REGISTERED_MODEL_NAME)
    try:
        text = read_model_card(registry, args.version, as_html=args.html)
    except ModelCardMissing as error:
        raise UserError(str(error)) from None
    except MlflowException:
        raise UserError(
            f"the registry at {redact_url(tracking_uri)} has no version {args.version} of {registry.model_name}: "
            "train and decide a month first (claims-platform run --csv FILE, or make demo)"
        ) from None
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
