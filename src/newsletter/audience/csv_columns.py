"""What the columns of a subscriber CSV mean: names in several languages and tools, and
the status vocabularies of other tools' exports (Ghost, Buttondown, listmonk, Mailchimp,
Substack)."""

from __future__ import annotations

import re

from newsletter.audience.records import STATUSES, Status

COLUMN_ROLES = {
    "email": "email",
    "emailaddress": "email",
    "emailadresse": "email",
    "mail": "email",
    "mailadresse": "email",
    "courriel": "email",
    "name": "name",
    "fullname": "name",
    "displayname": "name",
    "firstname": "first_name",
    "first": "first_name",
    "fname": "first_name",  # Mailchimp's merge field
    "givenname": "first_name",
    "forename": "first_name",
    "vorname": "first_name",
    "prénom": "first_name",
    "prenom": "first_name",
    "statusreason": "status_reason",
    "statuschanged": "status_changed",
    # Mailchimp's unsubscribed and cleaned exports
    "unsubreason": "status_reason",
    "unsubtime": "status_changed",
    "cleantime": "status_changed",
}
# Kept as a custom field, and joined to the first name when there is no name column.
LAST_NAME_COLUMNS = frozenset(
    {"lastname", "last", "lname", "surname", "familyname", "familienname", "nachname", "nom"}
)

_A, _U, _B, _C = Status.ACTIVE, Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED
# What each status column of other tools' exports says, value (lower case) -> status.
# Never confirmed (Mailchimp "pending", Buttondown "unactivated", listmonk "unconfirmed")
# counts as unsubscribed: nobody is sent to who has not opted in.
_STATUS_VALUES: dict[str, Status] = {
    **{status.value: status for status in STATUSES},
    # Mailchimp
    "subscribed": _A,
    "cleaned": _B,
    "pending": _U,
    "transactional": _U,
    "archived": _U,
    # listmonk: subscriber status, and subscription status
    "enabled": _A,
    "disabled": _U,
    "blocklisted": _U,
    "blacklisted": _U,
    "confirmed": _A,
    "unconfirmed": _U,
}
_BUTTONDOWN_TYPES: dict[str, Status] = {
    **{t: _A for t in ("regular", "premium", "gifted", "trialed", "churning", "churned")},
    **{t: _A for t in ("past_due", "unpaid")},
    **{t: _U for t in ("unsubscribed", "removed", "unactivated", "paused", "blocked")},
    **{t: _U for t in ("spammy",)},
    "complained": _C,
    "undeliverable": _B,
    "bounced": _B,
    "malformed": _B,
}
_TRUE = ("true", "yes", "1", "y", "t")
_FALSE = ("false", "no", "0", "n", "f")
# Normalised header -> its vocabulary: Ghost, Buttondown, listmonk, Substack.
STATUS_COLUMNS: dict[str, dict[str, Status]] = {
    "status": _STATUS_VALUES,
    "subscriptionstatus": _STATUS_VALUES,
    "subscribertype": _BUTTONDOWN_TYPES,
    "subscribedtoemails": {**{v: _A for v in _TRUE}, **{v: _U for v in _FALSE}},
    "emaildisabled": {**{v: _U for v in _TRUE}, **{v: _A for v in _FALSE}},
}
# Mailchimp exports its unsubscribed and cleaned contacts without a status column; these
# columns (normalised) mark such a file, and say what every row of it is.
FILE_STATUS_COLUMNS = {"unsubtime": _U, "unsubreason": _U, "cleantime": _B}
# Which status wins when a row has several: the furthest from active.
SEVERITY = {_A: 0, Status.PENDING: 1, _U: 2, _B: 3, _C: 4}


def normal_header(header: str) -> str:
    return re.sub(r"[\s_.\-]", "", header.strip().lower())


def worst(a: Status | None, b: Status | None) -> Status | None:
    """Of two statuses, the one furthest from active (an opt-out always wins)."""
    if a is None or b is None:
        return a or b
    return a if SEVERITY[a] >= SEVERITY[b] else b
