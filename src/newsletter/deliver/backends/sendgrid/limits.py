"""SendGrid's documented limits of POST /v3/mail/send (shared/sendgrid/README.md)."""

MAX_PERSONALIZATIONS = 1000
MAX_REQUEST_BYTES = 30_000_000
# Headroom under "less than 30MB" for the client's own framing and any rounding.
REQUEST_BYTES_BUDGET = 29_000_000
MAX_SUBSTITUTION_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
