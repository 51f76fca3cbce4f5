"""Command-line interface: thin commands over the core modules."""

from newsletter.cli import add_commands as add_commands
from newsletter.cli import build_commands as build_commands
from newsletter.cli import preview_commands as preview_commands
from newsletter.cli import schedule_commands as schedule_commands
from newsletter.cli import send_commands as send_commands
from newsletter.cli import subscriber_commands as subscriber_commands
from newsletter.cli.app import app, main

__all__ = ["app", "main"]
