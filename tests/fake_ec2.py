"""A local fake of the three EC2 Client VPN calls that `upload` makes.

No public emulator implements the Client VPN API (moto 5.2.1 raises
NotImplementedError for it, LocalStack returns 501), so the tests bring this
fake. It speaks the EC2 Query protocol, API version 2016-11-15: a
form-encoded `POST /` with `Action`, `Version` and flattened parameters
(`ClientVpnEndpointId.1`, `Filter.1.Name`, `Filter.1.Value.1`), and
returns namespaced XML. It implements DescribeClientVpnEndpoints,
ExportClientVpnClientCertificateRevocationList and
ImportClientVpnClientCertificateRevocationList.

Two layers share one request handler, `FakeEC2State.handle`:

- `FakeEC2Server`, a loopback HTTP server for subprocess and end-to-end
  tests (point boto3 at it with `AWS_ENDPOINT_URL_EC2`);
- `install_in_process`, a botocore `before-send` hook that returns responses
  to a client without a socket.

Every request must carry a SigV4 signature made with `DUMMY_ACCESS_KEY_ID`
and `DUMMY_SECRET_ACCESS_KEY` (the keys `aws_environment` sets), or it gets
401 AuthFailure. The region comes from the signature's credential scope,
and endpoints are stored per region. Nothing here contacts AWS: the server
binds to 127.0.0.1 only.

Fixtures: `fake_ec2` (a running `FakeEC2Server`), `aws_env` (an isolated
environment pointing at it) and `no_retry_sleep` (botocore's
standard-mode backoff set to zero, so retry tests run fast).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.credentials import Credentials
from botocore.exceptions import ConnectionClosedError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x448, x25519

logger = logging.getLogger(__name__)

API_VERSION = "2016-11-15"
XML_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
DUMMY_ACCESS_KEY_ID = "AKIAFAKEEC2TESTKEY00"
DUMMY_SECRET_ACCESS_KEY = "fake-ec2-dummy-secret-access-key-not-real"

DESCRIBE = "DescribeClientVpnEndpoints"
EXPORT = "ExportClientVpnClientCertificateRevocationList"
IMPORT = "ImportClientVpnClientCertificateRevocationList"
ACTIONS = (DESCRIBE, EXPORT, IMPORT)

# Client VPN accepts at most 20,000 entries per CRL, and AWS cannot raise it.
CLIENT_VPN_MAX_CRL_ENTRIES = 20000

# Faults that change how the HTTP connection behaves rather than the content
# of the response.
CONNECTION_FAULTS = ("drop", "slow")
RESPONSE_FAULTS = (
    "throttle",
    "server-error",
    "html-500",
    "empty-500",
    "malformed",
    "not-found",
    "unauthorized",
    "auth-failure",
)
FAULTS = CONNECTION_FAULTS + RESPONSE_FAULTS

# Fault name -> (HTTP status, EC2 error code, message). The statuses are the
# ones EC2 sends: botocore retries RequestLimitExceeded in legacy mode only
# when it comes with 503.
ERROR_FAULTS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "server-error": (500, "InternalError", "An internal error has occurred."),
    "not-found": (
        400,
        "InvalidClientVpnEndpointId.NotFound",
        "The Client VPN endpoint ID does not exist.",
    ),
    "unauthorized": (
        403,
        "UnauthorizedOperation",
        "You are not authorized to perform this operation.",
    ),
    "auth-failure": (
        401,
        "AuthFailure",
        "AWS was not able to validate the provided access credentials.",
    ),
}

ENDPOINT_STATUSES = ("pending-associate", "available", "deleting", "deleted")
AUTH_TYPES = (
    "certificate-authentication",
    "directory-service-authentication",
    "federated-authentication",
)
DESCRIBE_FILTERS = ("endpoint-id", "transport-protocol")
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy")
FAKE_ACCOUNT_ID = "123456789012"


@dataclass
class FakeEndpoint:
    """One Client VPN endpoint as the fake stores it.

    The first nine fields are the interface tests rely on. The rest fill
    the Describe output and the CRL state machine. `pending_exports_left`
    counts the Exports that still report `pending` before `crl_status`
    turns `active`. With `ca_certificate_pem` set, Import rejects a CRL
    that this CA did not issue and sign.
    """

    endpoint_id: str
    region: str
    status: str = "available"
    auth_type: str = "certificate-authentication"
    tags: dict[str, str] = field(default_factory=dict)
    crl_pem: str | None = None
    crl_status: str = "active"
    imports: int = 0
    exports: int = 0
    transport_protocol: str = "udp"
    description: str = ""
    client_root_certificate_chain: str = ""
    server_certificate_arn: str = ""
    crl_status_message: str | None = None
    pending_exports_left: int = 0
    creation_time: str = "2026-01-01T00:00:00"
    ca_certificate_pem: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received, before any fault or check applied.

    `attempt` comes from botocore's `amz-sdk-request: attempt=N` header and
    is None when the header is missing. `region` is "" for an unsigned
    request.
    """

    action: str
    region: str
    params: dict[str, str]
    attempt: int | None
    dry_run: bool
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Reply:
    """The shared handler's result: an HTTP response, or a dropped connection.

    `delay` is the number of seconds to wait before sending the response.
    """

    status: int
    body: bytes
    content_type: str = "text/xml;charset=UTF-8"
    drop: bool = False
    delay: float = 0.0


@dataclass
class _Fault:
    action: str | None
    fault: str
    remaining: int
    options: dict[str, Any]


class FakeEC2Error(Exception):
    """An EC2 error response: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


# ---------------------------------------------------------------- state


class FakeEC2State:
    """Endpoints per region, permissions, injected faults and the request log.

    All request handling goes through `handle`, under one lock, so the HTTP
    server's threads and the in-process hook see the same behaviour.

    Settings a test may change:

    - `allowed_actions`: actions the caller may run. Real calls and DryRun
      calls of any other action get 403 UnauthorizedOperation.
    - `pending_exports_before_active`: after an Import, Export reports
      `pending` this many times, then `active`.
    - `max_entries`: an Import of a CRL with more entries gets 400
      InvalidParameterValue.
    - `page_size`: Describe returns at most this many endpoints per page,
      even when MaxResults is larger, so callers must follow NextToken. Real
      EC2 may also return fewer items than MaxResults.
    - `export_without_crl`: what Export returns for an endpoint that never
      had a CRL, "empty" (empty `certificateRevocationList`, no `status`)
      or "omit" (neither element). Real AWS behaviour here is undocumented.
    - `credentials`: access key ID -> secret key accepted in signatures.
    - `verify_signatures`: False skips recomputing the signature, but the
      Authorization header must still be well formed.
    - `reject_expired_crls`: True makes Import reject a CRL whose nextUpdate
      has passed. Off by default because AWS documents no such check.

    `handler_errors` collects exceptions raised by the fake itself (bugs,
    not EC2 errors). Such a request gets a 500 FakeEC2HandlerError, and the
    `fake_ec2` fixture fails the test at teardown.
    """

    def __init__(self) -> None:
        self.allowed_actions: set[str] = set(ACTIONS)
        self.requests: list[RecordedRequest] = []
        self.pending_exports_before_active = 1
        self.max_entries = CLIENT_VPN_MAX_CRL_ENTRIES
        self.page_size = 3
        self.export_without_crl = "empty"
        self.credentials = {DUMMY_ACCESS_KEY_ID: DUMMY_SECRET_ACCESS_KEY}
        self.verify_signatures = True
        self.reject_expired_crls = False
        self.handler_errors: list[Exception] = []
        self._endpoints: dict[tuple[str, str], FakeEndpoint] = {}
        self._faults: list[_Fault] = []
        self._lock = threading.RLock()

    def add_endpoint(
        self, region: str, endpoint_id: str | None = None, **fields: Any
    ) -> FakeEndpoint:
        """Create an endpoint in `region`; a random `cvpn-endpoint-…` ID if None."""
        if endpoint_id is None:
            endpoint_id = "cvpn-endpoint-" + secrets.token_hex(9)[:17]
        fields.setdefault(
            "client_root_certificate_chain",
            f"arn:aws:acm:{region}:{FAKE_ACCOUNT_ID}:certificate/{uuid.uuid4()}",
        )
        fields.setdefault(
            "server_certificate_arn",
            f"arn:aws:acm:{region}:{FAKE_ACCOUNT_ID}:certificate/{uuid.uuid4()}",
        )
        if fields.get("crl_status") == "pending":
            fields.setdefault(
                "pending_exports_left", self.pending_exports_before_active
            )
        endpoint = FakeEndpoint(endpoint_id=endpoint_id, region=region, **fields)
        _check_endpoint_fields(endpoint)
        with self._lock:
            if (region, endpoint_id) in self._endpoints:
                raise ValueError(f"endpoint {endpoint_id} already exists in {region}")
            self._endpoints[(region, endpoint_id)] = endpoint
        return endpoint

    def endpoint(self, region: str, endpoint_id: str) -> FakeEndpoint:
        """Return the stored endpoint; KeyError names the region and ID if absent."""
        with self._lock:
            try:
                return self._endpoints[(region, endpoint_id)]
            except KeyError:
                raise KeyError(
                    f"no fake endpoint {endpoint_id} in region {region}"
                ) from None

    def endpoints_in(self, region: str) -> list[FakeEndpoint]:
        """Return the endpoints of `region` in the order they were added."""
        with self._lock:
            return [e for (r, _), e in self._endpoints.items() if r == region]

    def inject(
        self, action: str | None, fault: str, count: int = 1, **options: Any
    ) -> None:
        """Queue `fault` for the next `count` requests of `action` (None: any).

        Faults and what the client receives:

        - "throttle": 503 RequestLimitExceeded.
        - "server-error": 500 InternalError.
        - "html-500", "empty-500": 500 with an HTML or an empty body.
        - "drop": no response, the connection is closed.
        - "slow": the normal response, sent after `seconds=`.
        - "malformed": 200 with broken XML.
        - "not-found": 400 InvalidClientVpnEndpointId.NotFound.
        - "unauthorized": 403 UnauthorizedOperation.
        - "auth-failure": 401 AuthFailure.

        Error faults accept `status=` and `message=` to change the HTTP
        status and message, for example a throttle with 400. Error faults,
        the 500 bodies and "drop" skip the request, so it changes no
        state. "slow" and "malformed" handle it normally first, so an
        Import still replaces the CRL even though the client sees a
        failure.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        if count < 1:
            raise ValueError(f"fault count must be at least 1, got {count}")
        if fault == "slow" and not isinstance(options.get("seconds"), int | float):
            raise ValueError("the slow fault needs seconds=N, the delay in seconds")
        if not isinstance(options.get("status", 0), int):
            raise TypeError(f"status= must be an int, got {options['status']!r}")
        with self._lock:
            self._faults.append(_Fault(action, fault, count, dict(options)))

    def actions(self, action: str | None = None) -> list[RecordedRequest]:
        """Return the recorded requests, only those of `action` if given."""
        with self._lock:
            return [r for r in self.requests if action is None or r.action == action]

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """Handle one HTTP request; shared by the server and the in-process hook.

        `headers` must have lower-case names and include `host`.
        """
        request_id = str(uuid.uuid4())
        try:
            return self._handle(method, path, headers, body, request_id)
        except Exception as error:
            logger.exception("fake EC2 failed on request %s", request_id)
            with self._lock:
                self.handler_errors.append(error)
            bug = FakeEC2Error(500, "FakeEC2HandlerError", repr(error))
            return _error_reply(bug, request_id)

    def _handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
    ) -> Reply:
        try:
            params = _parse_form(body)
        except FakeEC2Error as error:
            logger.info("fake EC2 rejected request %s: %s", request_id, error)
            with self._lock:
                self.requests.append(_record("", headers, {}))
            return _error_reply(error, request_id)
        action = params.get("Action", "")
        with self._lock:
            self.requests.append(_record(action, headers, params))
            fault = self._take_fault(action)
        if fault is not None:
            logger.info(
                "fake EC2 injects %s into %s (request %s)",
                fault.fault,
                action,
                request_id,
            )
        if fault is not None and fault.fault in ERROR_FAULTS:
            return _error_reply(_fault_error(fault), request_id)
        if fault is not None and fault.fault in ("html-500", "empty-500", "drop"):
            return _fault_reply(fault, action, request_id)
        reply = self._respond(method, path, headers, params, body, request_id)
        if fault is not None and fault.fault == "malformed":
            return _fault_reply(fault, action, request_id)
        if fault is not None and fault.fault == "slow":
            reply.delay = float(fault.options["seconds"])
        return reply

    def _take_fault(self, action: str) -> _Fault | None:
        for fault in self._faults:
            if fault.action is None or fault.action == action:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _respond(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        params: dict[str, str],
        body: bytes,
        request_id: str,
    ) -> Reply:
        try:
            if method != "POST" or urlsplit(path).path != "/":
                raise FakeEC2Error(
                    400, "InvalidRequest", "The fake EC2 endpoint accepts only POST /."
                )
            region = self._check_signature(method, headers, body)
            action = _check_action(params)
            with self._lock:
                xml = self._dispatch(action, region, params)
        except FakeEC2Error as error:
            logger.info(
                "fake EC2 rejected %s (request %s): %s",
                params.get("Action", ""),
                request_id,
                error,
            )
            return _error_reply(error, request_id)
        return Reply(200, _response_document(action, request_id, xml))

    def _check_signature(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        scope = _credential_scope(headers)
        if self.verify_signatures:
            secret = self.credentials.get(scope.access_key)
            if secret is None:
                raise FakeEC2Error(
                    401,
                    "AuthFailure",
                    f"The access key ID {scope.access_key} is not known to the fake.",
                )
            _verify_signature(method, headers, body, scope, secret)
        return scope.region

    def _dispatch(self, action: str, region: str, params: dict[str, str]) -> str:
        if action not in self.allowed_actions:
            raise FakeEC2Error(
                403,
                "UnauthorizedOperation",
                f"You are not authorized to perform this operation ({action}).",
            )
        if params.get("DryRun") == "true":
            raise FakeEC2Error(
                412,
                "DryRunOperation",
                "Request would have succeeded, but DryRun flag is set.",
            )
        if action == DESCRIBE:
            return self._describe(region, params)
        endpoint = self._endpoint_for_call(region, params)
        if action == EXPORT:
            return _export(endpoint, self.export_without_crl)
        return self._import(endpoint, params)

    def _endpoint_for_call(self, region: str, params: dict[str, str]) -> FakeEndpoint:
        endpoint_id = _required(params, "ClientVpnEndpointId")
        endpoint = self._endpoints.get((region, endpoint_id))
        if endpoint is None or endpoint.status == "deleted":
            raise _not_found([endpoint_id])
        return endpoint

    def _describe(self, region: str, params: dict[str, str]) -> str:
        endpoints = [e for (r, _), e in self._endpoints.items() if r == region]
        requested_ids = _numbered(params, "ClientVpnEndpointId")
        if requested_ids:
            known = {e.endpoint_id for e in endpoints}
            missing = [i for i in requested_ids if i not in known]
            if missing:
                raise _not_found(missing)
            endpoints = [e for e in endpoints if e.endpoint_id in requested_ids]
        for name, values in _filters(params):
            endpoints = [e for e in endpoints if _filter_value(e, name) in values]
        page_size = min(_max_results(params), self.page_size)
        start = _decode_next_token(params.get("NextToken"), len(endpoints))
        page = endpoints[start : start + page_size]
        xml = _element("clientVpnEndpoint", "".join(_endpoint_item(e) for e in page))
        if start + page_size < len(endpoints):
            xml += _text("nextToken", _encode_next_token(start + page_size))
        return xml

    def _import(self, endpoint: FakeEndpoint, params: dict[str, str]) -> str:
        crl_text = _required(params, "CertificateRevocationList")
        crl = _load_crl(crl_text)
        entries = len(crl)
        if entries > self.max_entries:
            raise FakeEC2Error(
                400,
                "InvalidParameterValue",
                f"The certificate revocation list has {entries} entries; "
                f"the maximum is {self.max_entries}.",
            )
        if endpoint.ca_certificate_pem is not None:
            _check_crl_issuer(crl, endpoint.ca_certificate_pem)
        if self.reject_expired_crls:
            _check_crl_not_expired(crl)
        endpoint.crl_pem = crl_text
        endpoint.crl_status = "pending"
        endpoint.crl_status_message = None
        endpoint.pending_exports_left = self.pending_exports_before_active
        endpoint.imports += 1
        return _text("return", "true")


def _check_endpoint_fields(endpoint: FakeEndpoint) -> None:
    if endpoint.status not in ENDPOINT_STATUSES + ("pending",):
        raise ValueError(f"invalid endpoint status {endpoint.status!r}")
    if endpoint.auth_type not in AUTH_TYPES:
        raise ValueError(f"invalid auth_type {endpoint.auth_type!r}")
    if endpoint.crl_status not in ("pending", "active"):
        raise ValueError(f"invalid crl_status {endpoint.crl_status!r}")


def _record(
    action: str, headers: Mapping[str, str], params: dict[str, str]
) -> RecordedRequest:
    try:
        region = _credential_scope(headers).region
    except FakeEC2Error:
        region = ""
    return RecordedRequest(
        action=action,
        region=region,
        params=params,
        attempt=_attempt(headers.get("amz-sdk-request", "")),
        dry_run=params.get("DryRun") == "true",
        headers=dict(headers),
    )


def _attempt(header: str) -> int | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "attempt" and value.isdigit():
            return int(value)
    return None


# ---------------------------------------------------------------- parsing


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FakeEC2Error(
            400, "InvalidParameterValue", f"The request body is not UTF-8: {error}"
        ) from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _check_action(params: dict[str, str]) -> str:
    action = params.get("Action", "")
    if action not in ACTIONS:
        raise FakeEC2Error(
            400,
            "InvalidAction",
            f"The action {action!r} is not valid for this web service.",
        )
    # NOTE: the code real EC2 uses for a wrong Version is not documented.
    if params.get("Version") != API_VERSION:
        raise FakeEC2Error(
            400,
            "InvalidParameterValue",
            f"Version must be {API_VERSION}, got {params.get('Version')!r}.",
        )
    return action


def _required(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise FakeEC2Error(
            400, "MissingParameter", f"The request must contain the parameter {name}."
        )
    return params[name]


def _numbered(params: dict[str, str], prefix: str) -> list[str]:
    """Return the values of `prefix.1`, `prefix.2`, … in index order."""
    indexed = []
    for key, value in params.items():
        head, _, index = key.rpartition(".")
        if head == prefix and index.isdigit():
            indexed.append((int(index), value))
    return [value for _, value in sorted(indexed)]


def _filters(params: dict[str, str]) -> list[tuple[str, set[str]]]:
    filters = []
    indexes = sorted(
        {
            int(key.split(".")[1])
            for key in params
            if key.startswith("Filter.") and key.split(".")[1].isdigit()
        }
    )
    for index in indexes:
        name = params.get(f"Filter.{index}.Name", "")
        if name not in DESCRIBE_FILTERS:
            raise FakeEC2Error(
                400, "InvalidParameterValue", f"The filter '{name}' is invalid."
            )
        filters.append((name, set(_numbered(params, f"Filter.{index}.Value"))))
    return filters


def _filter_value(endpoint: FakeEndpoint, name: str) -> str:
    if name == "endpoint-id":
        return endpoint.endpoint_id
    return endpoint.transport_protocol


def _max_results(params: dict[str, str]) -> int:
    raw = params.get("MaxResults")
    if raw is None:
        return 1000
    if not raw.isdigit() or not 5 <= int(raw) <= 1000:
        raise FakeEC2Error(
            400,
            "InvalidParameterValue",
            f"MaxResults must be an integer from 5 to 1000, got {raw!r}.",
        )
    return int(raw)


def _encode_next_token(offset: int) -> str:
    payload = json.dumps({"offset": offset}).encode()
    return base64.urlsafe_b64encode(payload).decode()


def _decode_next_token(token: str | None, total: int) -> int:
    if token is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        offset = None
    if not isinstance(offset, int) or not 0 <= offset <= total:
        raise FakeEC2Error(
            400, "InvalidPaginationToken", f"The pagination token {token!r} is invalid."
        )
    return offset


# NOTE: AWS documents no error code for a rejected CRL. The fake uses
# InvalidParameterValue for every CRL check, as the most likely code.
def _load_crl(crl_text: str) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(crl_text.encode("utf-8"))
    except ValueError as error:
        raise FakeEC2Error(
            400,
            "InvalidParameterValue",
            f"The certificate revocation list is not a valid PEM CRL: {error}",
        ) from None


def _check_crl_issuer(crl: x509.CertificateRevocationList, ca_pem: str) -> None:
    ca = x509.load_pem_x509_certificate(ca_pem.encode("utf-8"))
    public_key = ca.public_key()
    # X25519 and X448 keys cannot sign, so no CRL verifies against them.
    signed = not isinstance(
        public_key, x25519.X25519PublicKey | x448.X448PublicKey
    ) and crl.is_signature_valid(public_key)
    if crl.issuer != ca.subject or not signed:
        raise FakeEC2Error(
            400,
            "InvalidParameterValue",
            f"The certificate revocation list issued by {crl.issuer.rfc4514_string()}"
            f" is not signed by the client root CA {ca.subject.rfc4514_string()}.",
        )


def _check_crl_not_expired(crl: x509.CertificateRevocationList) -> None:
    next_update = crl.next_update_utc
    if next_update is not None and next_update < datetime.now(UTC):
        raise FakeEC2Error(
            400,
            "InvalidParameterValue",
            f"The certificate revocation list expired at {next_update.isoformat()}.",
        )


# ---------------------------------------------------------------- signatures


@dataclass(frozen=True)
class _Scope:
    access_key: str
    date: str
    region: str
    signed_headers: list[str]
    signature: str


def _credential_scope(headers: Mapping[str, str]) -> _Scope:
    """Parse `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, …`."""
    authorization = headers.get("authorization", "")
    prefix = "AWS4-HMAC-SHA256 "
    if not authorization.startswith(prefix + "Credential="):
        raise _auth_failure("The request is missing a SigV4 Authorization header.")
    if "x-amz-date" not in headers:
        raise _auth_failure("The request is missing the X-Amz-Date header.")
    fields = {}
    for part in authorization[len(prefix) :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    scope = fields.get("Credential", "").split("/")
    if (
        len(scope) != 5
        or scope[3] != "ec2"
        or scope[4] != "aws4_request"
        or not scope[2]
    ):
        raise _auth_failure(
            "The credential scope must read <key>/<date>/<region>/ec2/aws4_request."
        )
    if "SignedHeaders" not in fields or "Signature" not in fields:
        raise _auth_failure(
            "The Authorization header lacks SignedHeaders or Signature."
        )
    return _Scope(
        access_key=scope[0],
        date=scope[1],
        region=scope[2],
        signed_headers=fields["SignedHeaders"].split(";"),
        signature=fields["Signature"],
    )


def _verify_signature(
    method: str, headers: Mapping[str, str], body: bytes, scope: _Scope, secret: str
) -> None:
    """Recompute the signature with botocore's own SigV4 signer and compare."""
    timestamp = headers["x-amz-date"]
    if timestamp[:8] != scope.date:
        raise _auth_failure("The credential scope date does not match X-Amz-Date.")
    signed = {name: headers[name] for name in scope.signed_headers if name in headers}
    if len(signed) != len(scope.signed_headers):
        raise _auth_failure("A header listed in SignedHeaders is missing.")
    # The URL only supplies the path; the host comes from the signed headers.
    # http:// makes botocore hash the payload, as it does for every EC2 call.
    request = AWSRequest(
        method=method,
        url=f"http://{headers.get('host', '')}/",
        headers=signed,
        data=body,
    )
    request.context["timestamp"] = timestamp
    credentials = Credentials(scope.access_key, secret)
    signer = SigV4Auth(credentials, "ec2", scope.region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, scope.signature):
        raise _auth_failure(
            "The request signature we calculated does not match the signature "
            "you provided. Check your AWS Secret Access Key and signing method."
        )


def _auth_failure(message: str) -> FakeEC2Error:
    return FakeEC2Error(401, "AuthFailure", message)


# ---------------------------------------------------------------- XML


def _escape(value: str) -> str:
    # Carriage returns are written as a character reference because an XML
    # parser turns a literal CR LF into LF, and Export must return the text
    # exactly as it was imported.
    return (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", "&#13;")
    )


def _text(tag: str, value: str) -> str:
    return f"<{tag}>{_escape(value)}</{tag}>"


def _element(tag: str, inner: str) -> str:
    return f"<{tag}>{inner}</{tag}>"


def _response_document(action: str, request_id: str, inner: str) -> bytes:
    root = f"{action}Response"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{root} xmlns="{XML_NAMESPACE}">'
        f"{_text('requestId', request_id)}{inner}</{root}>"
    ).encode()


def _error_document(code: str, message: str, request_id: str) -> bytes:
    error = _text("Code", code) + _text("Message", message)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Response>{_element('Errors', _element('Error', error))}"
        f"{_text('RequestID', request_id)}</Response>"
    ).encode()


def _error_reply(error: FakeEC2Error, request_id: str) -> Reply:
    return Reply(error.status, _error_document(error.code, error.message, request_id))


def _not_found(endpoint_ids: list[str]) -> FakeEC2Error:
    listed = ", ".join(endpoint_ids)
    return FakeEC2Error(
        400,
        "InvalidClientVpnEndpointId.NotFound",
        f"The Client VPN endpoint ID '{listed}' does not exist.",
    )


def _fault_error(fault: _Fault) -> FakeEC2Error:
    status, code, message = ERROR_FAULTS[fault.fault]
    return FakeEC2Error(
        int(fault.options.get("status", status)),
        code,
        str(fault.options.get("message", message)),
    )


def _fault_reply(fault: _Fault, action: str, request_id: str) -> Reply:
    status = int(fault.options.get("status", 500))
    if fault.fault == "html-500":
        page = "<html><body><h1>500 Internal Server Error</h1></body></html>"
        return Reply(status, page.encode(), content_type="text/html")
    if fault.fault == "empty-500":
        return Reply(status, b"")
    if fault.fault == "drop":
        return Reply(0, b"", drop=True)
    # "malformed": a 200 whose XML stops in the middle of an element.
    root = f"{action or 'Unknown'}Response"
    broken = f'<{root} xmlns="{XML_NAMESPACE}"><requestId>{request_id}</requestId><ret'
    return Reply(200, broken.encode())


def _export(endpoint: FakeEndpoint, without_crl: str) -> str:
    endpoint.exports += 1
    if endpoint.crl_pem is None:
        if without_crl == "omit":
            return ""
        return "<certificateRevocationList/>"
    if endpoint.crl_status == "pending":
        if endpoint.pending_exports_left > 0:
            endpoint.pending_exports_left -= 1
        else:
            endpoint.crl_status = "active"
    status = _text("code", endpoint.crl_status)
    if endpoint.crl_status_message is not None:
        status += _text("message", endpoint.crl_status_message)
    return _text("certificateRevocationList", endpoint.crl_pem) + _element(
        "status", status
    )


def _endpoint_item(endpoint: FakeEndpoint) -> str:
    parts = [
        _text("clientVpnEndpointId", endpoint.endpoint_id),
        _text("description", endpoint.description),
        _element("status", _text("code", endpoint.status)),
        _text("creationTime", endpoint.creation_time),
        _text(
            "dnsName",
            f"*.{endpoint.endpoint_id}.prod.clientvpn.{endpoint.region}.amazonaws.com",
        ),
        _text("clientCidrBlock", "10.100.0.0/22"),
        _text("splitTunnel", "false"),
        _text("vpnProtocol", "openvpn"),
        _text("transportProtocol", endpoint.transport_protocol),
        _text("vpnPort", "443"),
        _text("serverCertificateArn", endpoint.server_certificate_arn),
        _element("authenticationOptions", _element("item", _auth_option(endpoint))),
        # Real EC2 capitalises these members, unlike every other field.
        _element("connectionLogOptions", _text("Enabled", "false")),
        _element("tagSet", "".join(_tag_item(k, v) for k, v in endpoint.tags.items())),
        _text("vpcId", "vpc-0fa4e0000000000fa"),
        _text("sessionTimeoutHours", "24"),
    ]
    return _element("item", "".join(parts))


def _auth_option(endpoint: FakeEndpoint) -> str:
    option = _text("type", endpoint.auth_type)
    if endpoint.auth_type == "certificate-authentication":
        chain = _text(
            "clientRootCertificateChain", endpoint.client_root_certificate_chain
        )
        return option + _element("mutualAuthentication", chain)
    if endpoint.auth_type == "directory-service-authentication":
        return option + _element(
            "activeDirectory", _text("directoryId", "d-9067000000")
        )
    provider = f"arn:aws:iam::{FAKE_ACCOUNT_ID}:saml-provider/fake"
    return option + _element(
        "federatedAuthentication", _text("samlProviderArn", provider)
    )


def _tag_item(key: str, value: str) -> str:
    return _element("item", _text("key", key) + _text("value", value))


# ---------------------------------------------------------------- HTTP layer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeEC2/1.0"
    # Idle keep-alive connections end after this many seconds.
    timeout = 10
    server: _FakeHTTPServer

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.state.handle(self.command, self.path, headers, body)
        if reply.drop:
            logger.debug("dropping the connection for %s", self.path)
            self.close_connection = True
            return
        if reply.delay and self.server.closing.wait(reply.delay):
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake EC2: " + format, *args)


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: FakeEC2State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.closing = threading.Event()


class FakeEC2Server:
    """The fake on a loopback HTTP port, served from a daemon thread.

    Use it as a context manager; `url` is `http://127.0.0.1:PORT`.
    """

    def __init__(self, state: FakeEC2State | None = None) -> None:
        self.state = state if state is not None else FakeEC2State()
        self._server = _FakeHTTPServer(self.state)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-ec2",
            daemon=True,
        )

    def __enter__(self) -> Self:
        self._thread.start()
        logger.debug("fake EC2 listening on %s", self.url)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, wake any delayed responses and close the listening socket."""
        self._server.closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


# ---------------------------------------------------------------- in-process layer


class _RawBody:
    """The `raw` object AWSResponse reads its content from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def install_in_process(client: Any, state: FakeEC2State) -> None:
    """Serve every EC2 call of a boto3 `client` from `state`, without a socket.

    The hook runs after botocore has serialized and signed the request, so
    the form encoding, SigV4, XML parsing and retry logic are all real. A
    "drop" fault raises botocore's ConnectionClosedError, as a closed
    socket does over HTTP; a "slow" fault sleeps before responding, but no
    read timeout applies without a socket.
    """

    def respond(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        headers = {
            name.lower(): value.decode() if isinstance(value, bytes) else str(value)
            for name, value in request.headers.items()
        }
        headers.setdefault("host", _host_from_url(request.url))
        parts = urlsplit(request.url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        reply = state.handle(request.method, path or "/", headers, _body_bytes(request))
        if reply.drop:
            raise ConnectionClosedError(endpoint_url=request.url)
        if reply.delay:
            time.sleep(reply.delay)
        response_headers = {
            "Content-Type": reply.content_type,
            "Content-Length": str(len(reply.body)),
        }
        return AWSResponse(
            request.url, reply.status, response_headers, _RawBody(reply.body)
        )

    client.meta.events.register("before-send.ec2.*", respond)


def _body_bytes(request: AWSPreparedRequest) -> bytes:
    body = request.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    position = body.tell()
    data = body.read()
    body.seek(position)
    return bytes(data)


def _host_from_url(url: str) -> str:
    # Matches what botocore signs when no Host header is set: the netloc
    # without the scheme's default port.
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port == default_port:
        return parts.hostname or ""
    return parts.netloc


# ---------------------------------------------------------------- environment


def aws_environment(
    tmp_path: Path, url: str | None = None, region: str = "us-east-1"
) -> dict[str, str]:
    """Return an isolated environment for a subprocess that runs boto3.

    Starts from `os.environ` without any AWS_* or proxy variable, then sets
    the dummy keys the fake accepts, the region, no instance metadata, and
    empty config and credentials files, so nothing reaches real AWS or a
    profile on this machine. `url` becomes AWS_ENDPOINT_URL_EC2.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith("AWS_") and name.lower() not in PROXY_VARIABLES
    }
    config_file = tmp_path / "aws-config"
    credentials_file = tmp_path / "aws-credentials"
    config_file.touch()
    credentials_file.touch()
    env.update(
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
        AWS_DEFAULT_REGION=region,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(config_file),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials_file),
    )
    if url is not None:
        env["AWS_ENDPOINT_URL_EC2"] = url
    return env


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def fake_ec2() -> Iterator[FakeEC2Server]:
    """A running fake EC2 server with an empty state.

    Teardown fails the test if the fake itself raised while handling a
    request, which a client would otherwise see only as a 500.
    """
    with FakeEC2Server() as server:
        yield server
    errors = server.state.handler_errors
    if errors:
        pytest.fail(f"the fake EC2 handler raised {len(errors)} time(s): {errors!r}")


@pytest.fixture
def aws_env(tmp_path: Path, fake_ec2: FakeEC2Server) -> dict[str, str]:
    """An isolated subprocess environment whose EC2 endpoint is `fake_ec2`."""
    return aws_environment(tmp_path, fake_ec2.url)


@pytest.fixture
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make botocore's standard-mode retries wait 0 s between attempts.

    Retries still happen and are counted; only the backoff sleep goes.
    Legacy mode is unaffected, so pin `mode: standard` as well.
    """
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda *_: 0.0)
