"""The Typer application and its one error boundary; command modules register on `app`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from newsletter.errors import ExitCode, NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Settings


# click's UsageError, whether typer vendors click (0.2x) or depends on it: the base of the
# public BadParameter either way.
_UsageError: Any = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")


def _workspace_first(args: list[str]) -> list[str]:
    """`--workspace`/`-w` is the root's option: accept it after the command too."""
    hoisted: list[str] = []
    rest: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            rest.extend([token, *tokens])
            break
        if token in ("-w", "--workspace"):
            hoisted.extend([token, next(tokens, "")])
        elif token.startswith("--workspace=") or (token.startswith("-w") and len(token) > 2):
            hoisted.append(token)
        else:
            rest.append(token)
    return [*hoisted, *rest]


# The validation wording typer passes through, in the tool's own words.
_PLAIN_WORDS = (
    (re.compile(r"Invalid value for '(--[\w-]+)'(?: / '-\w')?: "), r"\1: "),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be a valid integer[^—]*?(?= —|$)"), "must be a whole number"),
    (re.compile(r"Input should be a valid number[^—]*?(?= —|$)"), "must be a number"),
)


def _in_words(message: str) -> str:
    for pattern, replacement in _PLAIN_WORDS:
        message = pattern.sub(replacement, message)
    return message


def _usage_error(error: Any) -> None:
    # One line like every other error, instead of click's usage block; a group called
    # with nothing still shows its help.
    if type(error).__name__ == "NoArgsIsHelpError":
        raise error
    below = error.ctx.command_path.partition(" ")[2] if error.ctx else ""
    path = f"newsletter {below}".rstrip()
    message = _in_words(" ".join(error.format_message().split()).removeprefix("Invalid value: "))
    typer.secho(
        f"error: {message.rstrip('.')} — see `{path} --help`", fg=typer.colors.RED, err=True
    )
    raise typer.Exit(ExitCode.USAGE) from None


class _Group(TyperGroup):
    """Turns the project's own exceptions into one red line and their exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _workspace_first(args)
        try:
            return list(super().parse_args(ctx, args))
        except _UsageError as error:
            _usage_error(error)
            raise

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as error:
            typer.secho(f"error: {error.line()}", fg=typer.colors.RED, err=True)
            raise typer.Exit(error.exit_code) from None
        except _UsageError as error:
            _usage_error(error)
        except Exception as error:  # last resort: a database the core could not use
            from newsletter.db import engine_errors, explain

            if not isinstance(error, engine_errors()):
                raise

            if known := explain(error):
                typer.secho(f"error: {known.line()}", fg=typer.colors.RED, err=True)
                raise typer.Exit(known.exit_code) from None
            typer.secho(
                f"error: the workspace database failed ({error}) — check free disk space and "
                "permissions, then run the command again (`newsletter status SLUG` shows "
                "where a send stopped)",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(ExitCode.USER_ERROR) from None
        except BrokenPipeError:
            raise  # the output's reader went away (`| head`): `main` ends quietly
        except OSError as error:  # last resort: a file or folder the core did not anticipate
            where = f"{error.filename}: " if error.filename else ""
            typer.secho(
                f"error: {where}{error.strerror or error} — check the path and its permissions",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(ExitCode.USER_ERROR) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Assemble one edition of a newsletter and deliver it.\n\n"
    "Example:\n\n    newsletter build sample",
)


@app.callback()
def _root(
    ctx: typer.Context,
    workspace: Path | None = typer.Option(
        None,
        "--workspace",
        "-w",
        metavar="DIR",
        help="Workspace directory (holding newsletter.toml); default: the current one or a parent.",
        envvar="NEWSLETTER_WORKSPACE",
    ),
) -> None:
    ctx.obj = workspace


def settings(ctx: typer.Context) -> Settings:
    """The workspace settings for this invocation (imported lazily to keep --help fast)."""
    from newsletter.config import load_settings

    root = ctx.find_root().obj
    return load_settings(root)


def info(message: str) -> None:
    typer.echo(message)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def main() -> None:
    try:
        app()
    except BrokenPipeError:
        # `newsletter status x | head`: the reader went away; that is not an error to show.
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
