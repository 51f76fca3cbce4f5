"""`newsletter templates list|eject|diff`: the built-in templates and the workspace's overrides."""

from __future__ import annotations

import typer

from newsletter.cli.app import app, info, settings

templates_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The built-in email templates and this workspace's overrides.\n\n"
    "Example:  newsletter templates eject footer",
)
app.add_typer(templates_app, name="templates")


@templates_app.command("list")
def list_templates(ctx: typer.Context) -> None:
    """Show the built-in templates and which ones the workspace overrides.

    Example:  newsletter templates list
    """
    from newsletter.build.template_files import template_states

    for state in template_states(settings(ctx)):
        mark = ""
        if state.overridden:
            mark = "  overridden" + ("" if state.differs else " (same as built-in)")
        info(f"{state.name}{mark}")


@templates_app.command()
def eject(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A built-in template, e.g. footer or partials/grid."),
) -> None:
    """Copy one built-in template into templates/ to edit it; the others stay built-in.

    Example:  newsletter templates eject partials/footer.mjml.j2
    """
    from newsletter.build.template_files import eject_template

    target = eject_template(settings(ctx), name)
    info(f"created {target} — edit it; `newsletter templates diff` shows your changes")


@templates_app.command()
def diff(ctx: typer.Context) -> None:
    """Show how each override differs from the current built-in template.

    Example:  newsletter templates diff
    """
    from newsletter.build.template_files import template_diff

    text = template_diff(settings(ctx))
    typer.echo(text.rstrip("\n") if text else "no template differs from the built-in one")
