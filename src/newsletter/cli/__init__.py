"""Command-line interface: one module per stage, each thin over the core packages."""

from newsletter.cli import audience as audience
from newsletter.cli import build as build
from newsletter.cli import collect as collect
from newsletter.cli import database as database
from newsletter.cli import deliver as deliver
from newsletter.cli import preview as preview
from newsletter.cli import report as report
from newsletter.cli import schedule as schedule
from newsletter.cli import templates as templates
from newsletter.cli import web as web
from newsletter.cli.app import app, main

__all__ = ["app", "main"]
