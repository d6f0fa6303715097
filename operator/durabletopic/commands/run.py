"""`durabletopic run`: the operator."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from typing import Any

from pydantic import ValidationError

from durabletopic.app.settings import OperatorSettings


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="run the operator",
        description="Run the operator. Every flag defaults to its DURABLETOPIC_* environment variable.",
    )
    for name, field in OperatorSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        env = "DURABLETOPIC_" + name.upper()
        parser.add_argument(
            flag, dest=name, default=None, help=f"{field.description} (env {env}, default {field.default!r})"
        )
    parser.add_argument(
        "--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, then in-cluster)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from durabletopic.app.main import RetriedIsWarning
    from durabletopic.app.main import run as run_operator

    overrides = {name: getattr(args, name) for name in OperatorSettings.model_fields}
    try:
        settings = OperatorSettings.from_env(**overrides)
    except ValidationError as error:
        for problem in error.errors():
            print(f"durabletopic: invalid setting {problem['loc'][0]}: {problem['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kopf").setLevel(max(logging.INFO, logging.getLevelName(args.log_level)))
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RetriedIsWarning())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_operator(settings, kubeconfig=args.kubeconfig))
    return 0
