"""One reader per input kind (HTML page, feed, Markdown, text), chosen through a registry."""
