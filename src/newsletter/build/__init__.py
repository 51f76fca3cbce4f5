"""Render an issue (Jinja2 -> MJML -> HTML, inlined), check it, and write build/<slug>/."""
