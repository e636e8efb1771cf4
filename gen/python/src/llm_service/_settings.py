"""What both clients share: the API key, the default deadline and the call metadata they make."""

import math
import re
from typing import Awaitable, Callable, Optional, Sequence, Tuple, Union

#: The deadline of a call that names none, in seconds: the service's own DEFAULT_DEADLINE_MS.
DEFAULT_TIMEOUT = 60.0

#: The API key, or a function asked for it before each call (for keys that rotate). AsyncLlmClient
#: also awaits what the function returns when it is awaitable.
ApiKey = Union[str, Callable[[], Union[str, Awaitable[str]]]]

Metadata = Sequence[Tuple[str, Union[str, bytes]]]

_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def checked_key(key: object) -> str:
    """The key as sent in `authorization: Bearer <key>`; a pasted newline or space fails here, not on the wire."""
    if not isinstance(key, str) or not _PRINTABLE.fullmatch(key):
        raise ValueError("api_key must be a string of printable ASCII without spaces")
    return key


def checked_api_key(api_key: Optional[ApiKey]) -> Optional[ApiKey]:
    if api_key is None or callable(api_key):
        return api_key
    return checked_key(api_key) if api_key != "" else None


def checked_timeout(timeout: Optional[float]) -> Optional[float]:
    """The default deadline in seconds; None sends none (the service then applies DEFAULT_DEADLINE_MS)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds greater than 0, or None for no default deadline (got {timeout!r})")
    return float(timeout)


def checked_target(target: object) -> str:
    if not isinstance(target, str) or not target:
        raise ValueError("target is required: the service's host:port, e.g. 127.0.0.1:8080")
    return target


def has_authorization(metadata: Optional[Metadata]) -> bool:
    return any(key.lower() == "authorization" for key, _ in metadata or ())


def bearer(key: object) -> Optional[Tuple[str, str]]:
    """The authorization entry for a key from a key function; None when it gave no key."""
    if key is None or key == "":
        return None
    return ("authorization", f"Bearer {checked_key(key)}")
