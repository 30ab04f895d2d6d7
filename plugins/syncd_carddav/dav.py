"""WebDAV / CardDAV requests and multistatus parsing over one httpx client."""

from __future__ import annotations

import ssl
import time
import xml.etree.ElementTree as ET
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
)

from syncd.plugin.connector import (
    AuthError,
    ConfigurationError,
    RateLimitedError,
    UnavailableError,
)
from syncd_carddav.answers import InvalidToken, Member, SyncCollectionUnsupported

DAV = "DAV:"
CARD = "urn:ietf:params:xml:ns:carddav"
RETRIES = 4
#: Server errors worth retrying: every 5xx but 501 Not Implemented.
_RETRIED = frozenset(range(500, 600)) - {501}


def _retried_error(error: BaseException) -> bool:
    """Network errors are worth another try; an untrusted certificate is not."""
    if isinstance(error, httpx.ConnectError):
        return not _certificate_refused(error)
    return isinstance(error, httpx.TransportError)


def _retried_answer(response: httpx.Response) -> bool:
    # 501: the server does not implement the request (a REPORT it lacks, say); asking
    # again will not help, and the caller may have another way
    return response.status_code == 429 or response.status_code in _RETRIED


def _last_outcome(state: RetryCallState) -> httpx.Response:
    """When the retries are used up: the last answer, or the last error raised."""
    assert state.outcome is not None
    return state.outcome.result()


def _certificate_refused(error: httpx.ConnectError) -> bool:
    """True when the connection failed because the certificate was not trusted."""
    return "CERTIFICATE_VERIFY_FAILED" in str(error) or isinstance(
        error.__cause__, ssl.SSLCertVerificationError
    )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class DavClient:
    """HTTP for one address book: connection reuse, retries with backoff on 5xx and
    429 (honouring Retry-After), run errors for 401/403 and a missing collection."""

    def __init__(
        self,
        url: str,
        client: httpx.Client,
        name: str,
        *,
        retries: int = RETRIES,
        backoff: float = 0.5,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.client = client
        self.name = name
        self.path = urlsplit(self.url).path
        self.retries = retries
        self.backoff = backoff

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send with retries (tenacity): network errors, 5xx but 501, and 429 are tried
        again after ``backoff`` seconds, doubled each time, or what ``Retry-After``
        asks for (at most a minute). Raise a run error for auth, for a certificate we
        do not trust, and when the retries are used up."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_retried_error) | retry_if_result(_retried_answer),
            retry_error_callback=_last_outcome,
            sleep=time.sleep,
        )
        try:
            response: httpx.Response = retrying(
                self.client.request,
                method,
                url,
                **kwargs,
            )
        except httpx.ConnectError as exc:
            if _certificate_refused(exc):
                raise UnavailableError(
                    f"{self.name}: {self.url}: the server's TLS certificate is not trusted"
                    f" ({exc}); set verify to its CA file (or false)"
                ) from None
            raise UnavailableError(f"{self.name}: cannot reach {self.url}: {exc}") from None
        except httpx.TransportError as exc:
            raise UnavailableError(f"{self.name}: cannot reach {self.url}: {exc}") from None
        status = response.status_code
        if status == 401:
            raise AuthError(f"{self.name}: {self.url} refused the login: check username/password")
        if status == 429:
            raise RateLimitedError(
                f"{self.name}: rate limited by {self.url}", _retry_after(response)
            )
        if status in _RETRIED:
            raise UnavailableError(f"{self.name}: {self.url} answered {status}")
        return response

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = _retry_after(outcome.result())
            if asked is not None:
                return min(asked, 60.0)
        return float(self.backoff * 2 ** (state.attempt_number - 1))

    def href_to_name(self, href: str) -> str | None:
        """The resource name of a member href, or None for the collection itself."""
        path = unquote(urlsplit(href).path)
        base = unquote(self.path)
        if not path.startswith(base):
            return None
        name = path[len(base) :].strip("/")
        return name or None

    def member_url(self, name: str) -> str:
        """The absolute URL of a member resource."""
        return urljoin(self.url, name)

    def check(self) -> None:
        """The address book exists and we may read it."""
        response = self.request(
            "PROPFIND", self.url, headers=_xml("0"), content=_propfind(["resourcetype"])
        )
        if response.status_code == 403:
            raise AuthError(f"{self.name}: {self.url} refused access: check username/password")
        if response.status_code == 404:
            raise ConfigurationError(f"{self.name}: address book {self.url} does not exist")
        if response.status_code != 207:
            raise ConfigurationError(
                f"{self.name}: {self.url} is not a WebDAV collection ({response.status_code})"
            )

    def sync_collection(self, token: str) -> tuple[list[Member], str | None]:
        """RFC 6578 sync-collection: changed members (with ETags) and the new token."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<D:sync-collection xmlns:D="DAV:">'
            f"<D:sync-token>{_escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>"
        )
        response = self.request("REPORT", self.url, headers=_xml("1"), content=body)
        if token and response.status_code in (403, 409, 412):
            raise InvalidToken(response.status_code)
        if response.status_code != 207:
            raise _unsupported(response)
        root = ET.fromstring(response.content)
        new = root.findtext(f"{{{DAV}}}sync-token")
        return _members(root), new

    def listing(self) -> list[Member]:
        """PROPFIND depth 1: every member with its ETag."""
        response = self.request(
            "PROPFIND", self.url, headers=_xml("1"), content=_propfind(["getetag"])
        )
        if response.status_code != 207:
            raise UnavailableError(
                f"{self.name}: listing {self.url} failed ({response.status_code})"
            )
        return _members(ET.fromstring(response.content))

    def multiget(self, hrefs: list[str]) -> list[Member]:
        """addressbook-multiget: card text and ETag of the given members."""
        if not hrefs:
            return []
        refs = "".join(f"<D:href>{_escape(h)}</D:href>" for h in hrefs)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="{CARD}">'
            f"<D:prop><D:getetag/><C:address-data/></D:prop>{refs}</C:addressbook-multiget>"
        )
        response = self.request("REPORT", self.url, headers=_xml("1"), content=body)
        if response.status_code != 207:
            raise UnavailableError(f"{self.name}: multiget failed ({response.status_code})")
        return _members(ET.fromstring(response.content))


def _xml(depth: str) -> dict[str, str]:
    """Headers of a WebDAV request with an XML body (Xandikos answers 415 without the
    content type)."""
    return {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}


def _unsupported(response: httpx.Response) -> Exception:
    return SyncCollectionUnsupported(f"sync-collection answered {response.status_code}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _propfind(props: list[str]) -> str:
    inner = "".join(f"<D:{p}/>" for p in props)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<D:propfind xmlns:D="DAV:"><D:prop>{inner}</D:prop></D:propfind>'
    )


def _members(root: ET.Element) -> list[Member]:
    found = []
    for response in root.findall(f"{{{DAV}}}response"):
        href = response.findtext(f"{{{DAV}}}href") or ""
        status = response.findtext(f"{{{DAV}}}status") or ""
        if " 404" in status:
            found.append(Member(href, gone=True))
            continue
        member = Member(href)
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            if " 200" not in (propstat.findtext(f"{{{DAV}}}status") or ""):
                continue
            prop = propstat.find(f"{{{DAV}}}prop")
            if prop is None:
                continue
            member.etag = prop.findtext(f"{{{DAV}}}getetag") or member.etag
            member.data = prop.findtext(f"{{{CARD}}}address-data") or member.data
        found.append(member)
    return found
