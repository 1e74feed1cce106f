"""Rich text written by staff (operator scripts) reduced to a safe subset of HTML.

Scripts are the one place staff HTML reaches a browser, so it is cleaned when saved and again
when served (an older row, or one written straight to the database, is never trusted).
"""

from __future__ import annotations

import nh3

ALLOWED_TAGS = {
    "p", "br", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li", "h3", "h4", "blockquote",
    "a", "code", "pre", "hr", "span", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "td": {"colspan"}, "th": {"colspan"}}
MAX_LENGTH = 50_000


def sanitize(html: str) -> str:
    """Tags outside the safe list are dropped, links keep only http(s)/mailto/tel."""
    return nh3.clean(
        html[:MAX_LENGTH],
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
    )
