"""Everything that talks to AWS: sessions, clients, endpoint specs and the Client VPN calls.

Only the commands that call AWS (upload, download, and revoke with
--upload) import this module, when they run, so the other commands never
pay boto3's start-up cost.

Facts about the service that shape this code (botocore 1.43):

- EC2 models no exceptions, so every service error is a plain ClientError
  whose code is in ``response["Error"]["Code"]``.
- A call with ``DryRun=True`` always fails: ``DryRunOperation`` (HTTP 412)
  means the call would succeed, anything else means it would not.
- boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, which the AWS CLI v2
  and the newer SDKs prefer, so AWS_REGION is read here.
- boto3 reads AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL itself.
- DescribeClientVpnEndpoints has no tag filter, so tags are matched here.
- A malformed response raises ``ResponseParserError``, which derives from
  neither ClientError nor BotoCoreError and is never retried.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from easyrsa_py.errors import EasyRSAError, UsageError

logger = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT_SECONDS = 30.0
CERTIFICATE_AUTHENTICATION = "certificate-authentication"
DRY_RUN_ALLOWED = "DryRunOperation"

_ENDPOINT_ID = r"cvpn-endpoint-[0-9a-zA-Z]+"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-[0-9]+"
_REGION_NAME = re.compile(_REGION)
_BARE_SPEC = re.compile(_ENDPOINT_ID)
_REGION_SPEC = re.compile(rf"(?P<region>{_REGION}):(?P<id>{_ENDPOINT_ID})")
_ARN_SPEC = re.compile(
    rf"arn:aws[a-z-]*:ec2:(?P<region>{_REGION}):[0-9]*:client-vpn-endpoint/(?P<id>{_ENDPOINT_ID})"
)
_SPEC_SEPARATORS = re.compile(r"[\s,]+")
_GONE_STATUSES = ("deleting", "deleted")

ClientHook = Callable[[Any], None]


class AWSSetupError(UsageError):
    """No usable region, credentials, profile or client settings: nothing was sent."""


class EndpointFailure(EasyRSAError):
    """One endpoint call failed; `code` is the AWS error code or a name for a local failure."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class EndpointRef:
    """A Client VPN endpoint id and the region it lives in."""

    endpoint_id: str
    region: str


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint as the user wrote it; `region` is None for a bare id."""

    text: str
    endpoint_id: str
    region: str | None


@dataclass(frozen=True)
class ExportedCRL:
    """The result of ExportClientVpnClientCertificateRevocationList."""

    pem: str
    status: str | None
    status_message: str | None


@dataclass(frozen=True)
class ClientSettings:
    """How to reach AWS: profile, explicit region and URL, retry and timeout limits."""

    profile: str | None = None
    regions: tuple[str, ...] = ()
    endpoint_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT_SECONDS


def parse_endpoint_spec(text: str) -> EndpointSpec:
    """Parse `cvpn-endpoint-…`, `REGION:cvpn-endpoint-…` or the endpoint's ARN."""
    for pattern in (_ARN_SPEC, _REGION_SPEC):
        match = pattern.fullmatch(text)
        if match:
            return EndpointSpec(text, match["id"], match["region"])
    if _BARE_SPEC.fullmatch(text):
        return EndpointSpec(text, text, None)
    raise UsageError(
        f"Invalid Client VPN endpoint {text!r}: use an endpoint id (cvpn-endpoint-…), "
        "REGION:ID (us-east-1:cvpn-endpoint-…) or the endpoint's ARN "
        "(arn:aws:ec2:REGION:ACCOUNT:client-vpn-endpoint/cvpn-endpoint-…)."
    )


def split_endpoint_list(text: str) -> list[str]:
    """Split an EASYRSA_AWS_ENDPOINTS value on spaces and commas."""
    return [word for word in _SPEC_SEPARATORS.split(text) if word]


def parse_tag(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise UsageError(f"Invalid --tag {text!r}: use KEY=VALUE, as in --tag env=prod.")
    return key, value


def read_max_attempts(raw: Mapping[str, str]) -> int:
    text = raw.get("EASYRSA_AWS_MAX_ATTEMPTS", "").strip()
    if not text:
        return DEFAULT_MAX_ATTEMPTS
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise UsageError(
            f"Invalid EASYRSA_AWS_MAX_ATTEMPTS {text!r}: use a whole number of 1 or more "
            f"(attempts per AWS call, retries included; the default is {DEFAULT_MAX_ATTEMPTS})."
        )
    return int(text)


def read_timeout(raw: Mapping[str, str]) -> float:
    text = raw.get("EASYRSA_AWS_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86400:
        raise UsageError(
            f"Invalid EASYRSA_AWS_TIMEOUT {text!r}: use a number of seconds above 0 "
            f"(the connect and read timeout of each AWS request; the default is "
            f"{DEFAULT_TIMEOUT_SECONDS:g})."
        )
    return seconds


@dataclass
class EC2Connection:
    """One boto3 session and an EC2 client per region, created on first use.

    `client_hook` is called with each new client; tests use it to attach an
    in-process fake of EC2.
    """

    settings: ClientSettings
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    client_hook: ClientHook | None = None
    _session: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def open(self) -> None:
        """Check the settings, create the session and check that credentials exist.

        Raises AWSSetupError.
        """
        import boto3  # type: ignore[import-untyped]
        from botocore.exceptions import BotoCoreError, ProfileNotFound  # type: ignore[import-untyped]

        _check_client_settings(self.settings)
        try:
            self._session = boto3.session.Session(profile_name=self.settings.profile)
            credentials = self._session.get_credentials()
        except ProfileNotFound as error:
            raise AWSSetupError(
                f"{error}. Check --profile or AWS_PROFILE against the profiles in your AWS config file."
            ) from None
        except BotoCoreError as error:
            raise AWSSetupError(f"Cannot load the AWS configuration: {error}") from None
        if credentials is None:
            raise AWSSetupError(
                "No AWS credentials found. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "or choose a profile with credentials through --profile or AWS_PROFILE."
            )

    def default_region(self) -> str | None:
        """Return --region, then AWS_REGION, AWS_DEFAULT_REGION, then the profile's region."""
        if self.settings.regions:
            return self.settings.regions[0]
        source = "the AWS profile"
        region: str | None = self._session.region_name if self._session else None
        for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if self.environ.get(name):
                source, region = name, self.environ[name]
                break
        if region is not None and not _REGION_NAME.fullmatch(region):
            raise AWSSetupError(f"Invalid AWS region {region!r} (from {source}): use a name such as us-east-1.")
        return region

    def search_regions(self) -> tuple[str, ...]:
        """Return the regions that --tag searches: every --region, or the default one."""
        if self.settings.regions:
            return self.settings.regions
        region = self.default_region()
        return (region,) if region else ()

    def client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = self._new_client(region)
        return self._clients[region]

    def _new_client(self, region: str) -> Any:
        from botocore.config import Config  # type: ignore[import-untyped]

        config = Config(
            retries={"mode": "standard", "total_max_attempts": self.settings.max_attempts},
            connect_timeout=self.settings.timeout,
            read_timeout=self.settings.timeout,
        )
        try:
            client = self._session.client(
                "ec2", region_name=region, endpoint_url=self.settings.endpoint_url, config=config
            )
        except ValueError as error:
            raise AWSSetupError(f"Invalid EC2 endpoint URL or region {region!r}: {error}") from None
        if self.client_hook is not None:
            self.client_hook(client)
        logger.debug("EC2 client for %s at %s", region, client.meta.endpoint_url)
        return client


def _check_client_settings(settings: ClientSettings) -> None:
    for region in settings.regions:
        if not _REGION_NAME.fullmatch(region):
            raise AWSSetupError(f"Invalid AWS region {region!r} (--region): use a name such as us-east-1.")
    url = settings.endpoint_url
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AWSSetupError(
                f"Invalid --endpoint-url {url!r}: use an http:// or https:// URL with a host name."
            )


def describe_failure(error: Exception) -> EndpointFailure:
    """Turn a botocore exception into an EndpointFailure with a code and message."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ParamValidationError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError  # type: ignore[import-untyped]

    if isinstance(error, ClientError):
        return _client_error_failure(error)
    if isinstance(error, ResponseParserError):
        return EndpointFailure("MalformedResponse", f"EC2 sent a response that cannot be parsed ({error}).")
    if isinstance(error, (ReadTimeoutError, ConnectTimeoutError)):
        return EndpointFailure("Timeout", f"{error}. Raise EASYRSA_AWS_TIMEOUT if the network is slow.")
    if isinstance(error, (EndpointConnectionError, ConnectionClosedError)):
        return EndpointFailure("ConnectionFailed", f"{error}. Check the network and the EC2 endpoint URL.")
    if isinstance(error, NoCredentialsError):
        return EndpointFailure("NoCredentials", str(error))
    if isinstance(error, ParamValidationError):
        return EndpointFailure("InvalidParameter", str(error))
    return EndpointFailure(type(error).__name__, str(error) or "the AWS call failed.")


def _client_error_failure(error: Any) -> EndpointFailure:
    details = error.response.get("Error", {})
    code = str(details.get("Code") or "Unknown")
    message = str(details.get("Message") or error)
    metadata = error.response.get("ResponseMetadata", {})
    if metadata.get("MaxAttemptsReached"):
        attempts = int(metadata.get("RetryAttempts", 0)) + 1
        message += (
            f" (gave up after {attempts} attempts; EASYRSA_AWS_MAX_ATTEMPTS sets how many)"
        )
    return EndpointFailure(code, message)


def call_ec2(client: Any, operation: str, **parameters: Any) -> dict[str, Any]:
    """Call one EC2 operation, raising EndpointFailure for any botocore failure."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
    from botocore.parsers import ResponseParserError

    try:
        response: dict[str, Any] = getattr(client, operation)(**parameters)
    except (ClientError, BotoCoreError, ResponseParserError) as error:
        logger.info("%s failed: %s", operation, error)
        raise describe_failure(error) from None
    return response


def describe_endpoint(client: Any, endpoint_id: str) -> dict[str, Any]:
    """Describe one endpoint; raises EndpointFailure if it is unknown or deleted."""
    response = call_ec2(client, "describe_client_vpn_endpoints", ClientVpnEndpointIds=[endpoint_id])
    endpoints = response.get("ClientVpnEndpoints") or []
    found = [item for item in endpoints if item.get("ClientVpnEndpointId") == endpoint_id]
    if not found:
        raise EndpointFailure(
            "InvalidClientVpnEndpointId.NotFound",
            f"The Client VPN endpoint '{endpoint_id}' does not exist in this region and account.",
        )
    endpoint = found[0]
    status = (endpoint.get("Status") or {}).get("Code")
    if status in _GONE_STATUSES:
        raise EndpointFailure("EndpointDeleted", f"The Client VPN endpoint '{endpoint_id}' is {status}.")
    return endpoint


def require_certificate_authentication(endpoint: dict[str, Any]) -> None:
    """Raise EndpointFailure unless the endpoint authenticates clients by certificate.

    A CRL only acts on mutual (certificate) authentication, so on other
    endpoints an import would change nothing.
    """
    types = [option.get("Type") for option in endpoint.get("AuthenticationOptions") or []]
    if CERTIFICATE_AUTHENTICATION not in types:
        listed_types = ", ".join(str(kind) for kind in types) or "none"
        raise EndpointFailure(
            "NotCertificateAuthenticated",
            f"The endpoint uses {listed_types} authentication, not {CERTIFICATE_AUTHENTICATION}, "
            "so a CRL has no effect on it.",
        )


def endpoints_with_tags(client: Any, tags: list[tuple[str, str]]) -> Iterator[str]:
    """Yield the ids of the endpoints that carry every tag, reading every page."""
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]
    from botocore.parsers import ResponseParserError

    try:
        for page in client.get_paginator("describe_client_vpn_endpoints").paginate():
            for endpoint in page.get("ClientVpnEndpoints") or []:
                if _has_tags(endpoint, tags) and endpoint.get("ClientVpnEndpointId"):
                    yield endpoint["ClientVpnEndpointId"]
    except (ClientError, BotoCoreError, ResponseParserError) as error:
        raise describe_failure(error) from None


def _has_tags(endpoint: dict[str, Any], tags: list[tuple[str, str]]) -> bool:
    present = {tag.get("Key"): tag.get("Value") for tag in endpoint.get("Tags") or []}
    return all(present.get(key) == value for key, value in tags)


def export_crl(client: Any, endpoint_id: str) -> ExportedCRL:
    """Export the endpoint's CRL. An endpoint without one gives an empty `pem`."""
    response = call_ec2(
        client, "export_client_vpn_client_certificate_revocation_list", ClientVpnEndpointId=endpoint_id
    )
    status = response.get("Status") or {}
    return ExportedCRL(
        pem=response.get("CertificateRevocationList") or "",
        status=status.get("Code"),
        status_message=status.get("Message"),
    )


def import_crl(client: Any, endpoint_id: str, pem: str) -> None:
    """Import the CRL, replacing the endpoint's CRL and resetting its client connections."""
    response = call_ec2(
        client,
        "import_client_vpn_client_certificate_revocation_list",
        ClientVpnEndpointId=endpoint_id,
        CertificateRevocationList=pem,
    )
    if response.get("Return") is not True:
        raise EndpointFailure("ImportNotConfirmed", "EC2 accepted the request but did not return true.")


def check_import_allowed(client: Any, endpoint_id: str, pem: str) -> None:
    """Run the import as a dry run; raises EndpointFailure unless it would succeed."""
    try:
        call_ec2(
            client,
            "import_client_vpn_client_certificate_revocation_list",
            ClientVpnEndpointId=endpoint_id,
            CertificateRevocationList=pem,
            DryRun=True,
        )
    except EndpointFailure as failure:
        if failure.code == DRY_RUN_ALLOWED:
            return
        raise
    raise EndpointFailure(
        "DryRunIgnored", "EC2 ran the import although DryRun was set; the CRL may have changed."
    )
