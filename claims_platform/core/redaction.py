"""Secrets out of URLs before they are printed or logged: pure string work, no imports beyond ``re``.

:func:`redact_url` masks, in a URL or in any text that contains URLs (an error message):

- the password of ``scheme://user:password@host`` -> ``scheme://user:***@host`` (a token given as the
  user alone, ``https://ghp_token@host``, keeps the user: there is no way to tell a name from a token,
  and SQLAlchemy's own ``hide_password`` renders it the same way);
- the values of query parameters that carry credentials: ``token``, ``access_token``, ``api_key``,
  ``password``, ``secret``, ``sig`` / ``signature``, ``X-Amz-Signature``, ``X-Amz-Credential``,
  ``X-Amz-Security-Token``, ``AWSAccessKeyId``, Azure's ``sv``-style ``sig``, … (any name that contains
  ``token``, ``secret``, ``password``, ``passwd``, ``signature``, ``credential``, ``apikey`` / ``api_key``
  or the word ``key``, or is ``sig``, ``pwd``, ``auth``, ``AWSAccessKeyId``) -> ``name=***``;
- the secret path of Slack-style incoming webhooks: ``https://hooks.slack.com/services/T…/B…/XXXX`` ->
  ``https://hooks.slack.com/services/***`` (likewise Discord's ``/api/webhooks/<id>/<token>`` and a
  Microsoft Teams / Office 365 webhook path), since the whole path is the credential; on any other
  host, what follows a path segment naming a hook (``/hooks/<token>``, ``/webhook/<id>/<token>``).

Anything that is not a URL is returned as it is; redacting twice gives the same text.
"""

from __future__ import annotations

import re

MASK = "***"

# A URL inside text: a scheme, ``://`` and everything up to whitespace or a closing quote/bracket.
_URL = re.compile(r"""(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>[^\s'"<>`]+)""")
# Query-string (or fragment) parameters whose value is a credential.
_SECRET_PARAM = re.compile(
    r"token|secret|passw(or)?d|signature|credential|api[-_]?key|(^|[-_.])key($|[-_.])|^(sig|pwd|auth|awsaccesskeyid)$",
    re.IGNORECASE,
)
# Webhook hosts whose path after the prefix is the secret: (host pattern, path prefix kept).
_WEBHOOK_PATHS = (
    (re.compile(r"(^|\.)hooks\.slack\.com$", re.I), "/services/"),
    (re.compile(r"(^|\.)hooks\.slack\.com$", re.I), "/workflows/"),
    (re.compile(r"(^|\.)hooks\.slack\.com$", re.I), "/triggers/"),
    (re.compile(r"(^|\.)discord(app)?\.com$", re.I), "/api/webhooks/"),
    (re.compile(r"(^|\.)webhook\.office\.com$", re.I), "/webhookb2/"),
    (re.compile(r"(^|\.)office\.com$", re.I), "/webhook/"),
)


def redact_url(text: str) -> str:
    """``text`` (one URL, or text holding URLs) with the credentials of each URL replaced by ``***``."""
    if not text or "://" not in text:
        return text
    return _URL.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    # Trailing punctuation of the sentence the URL stands in is not part of it.
    trailing = ""
    while rest and rest[-1] in ".,;:)]}":
        trailing = rest[-1] + trailing
        rest = rest[:-1]
    return f"{scheme}://{_redact_rest(rest)}{trailing}"


def _redact_rest(rest: str) -> str:
    """Everything after ``scheme://``: authority, path, query and fragment."""
    authority_end = len(rest)
    for stop in "/?#":
        position = rest.find(stop)
        if position != -1:
            authority_end = min(authority_end, position)
    authority, tail = rest[:authority_end], rest[authority_end:]
    # The userinfo ends at the LAST '@' of the authority (a password may contain '@').
    if "@" in authority:
        userinfo, host = authority.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            authority = f"{user}:{MASK}@{host}"
    else:
        host = authority
    path, query, fragment = _split_tail(tail)
    path = _redact_webhook_path(host.rsplit(":", 1)[0] if not host.endswith("]") else host, path)
    if query:
        query = "?" + _redact_params(query[1:])
    if fragment:
        fragment = "#" + _redact_params(fragment[1:])
    return authority + path + query + fragment


def _split_tail(tail: str) -> tuple[str, str, str]:
    fragment_at = tail.find("#")
    fragment = tail[fragment_at:] if fragment_at != -1 else ""
    before = tail[:fragment_at] if fragment_at != -1 else tail
    query_at = before.find("?")
    if query_at == -1:
        return before, "", fragment
    return before[:query_at], before[query_at:], fragment


def _redact_webhook_path(host: str, path: str) -> str:
    for host_pattern, prefix in _WEBHOOK_PATHS:
        if host_pattern.search(host) and path.startswith(prefix) and len(path) > len(prefix):
            return prefix + MASK
    # Any other incoming webhook (Mattermost, Rocket.Chat, a relay): what follows a ``…hook…`` segment.
    segments = path.split("/")
    for i, segment in enumerate(segments[:-1]):
        if "hook" in segment.lower() and any(segments[i + 1 :]):
            return "/".join([*segments[: i + 1], MASK])
    return path


def _redact_params(params: str) -> str:
    parts = []
    for part in params.split("&"):
        name, equals, value = part.partition("=")
        if equals and value and value != MASK and _SECRET_PARAM.search(name):
            parts.append(f"{name}={MASK}")
        else:
            parts.append(part)
    return "&".join(parts)
