"""The fake EC2 endpoint in fake_ec2.py behaves as botocore expects of EC2.

Each test drives the fake with a real boto3 client, so the form encoding,
SigV4 signing, XML parsing and retry handling are botocore's own. Most
tests run twice: over HTTP against `FakeEC2Server`, and in-process through
`install_in_process`. In-process clients point at a closed loopback port,
so a hook that failed to register could not reach AWS.
"""

# The fixtures imported from fake_ec2 are requested by parameter name, which
# ruff reports as a redefinition.
# ruff: noqa: F811

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fake_ec2 import (  # noqa: F401
    API_VERSION,
    DESCRIBE,
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    EXPORT,
    IMPORT,
    FakeEC2Server,
    FakeEC2State,
    aws_env,
    aws_environment,
    fake_ec2,
    install_in_process,
    no_retry_sleep,
)

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
# Nothing listens on the discard port, so a leaked in-process call fails fast.
UNREACHABLE_URL = "http://127.0.0.1:9"
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 3})

ClientFactory = Callable[..., Any]


@dataclass
class Fake:
    state: FakeEC2State
    client: ClientFactory
    layer: str


@pytest.fixture(autouse=True)
def isolated_aws_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test with the environment aws_environment builds."""
    environment = aws_environment(tmp_path)
    for name in list(os.environ):
        if name not in environment:
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(params=["http", "in-process"])
def fake(request: pytest.FixtureRequest, no_retry_sleep: None) -> Iterator[Fake]:
    """A fake EC2 state and a factory of boto3 clients that reach it."""
    layer = request.param
    with FakeEC2Server() as server:

        def make_client(
            region: str = REGION,
            secret: str = DUMMY_SECRET_ACCESS_KEY,
            access_key: str = DUMMY_ACCESS_KEY_ID,
            config: Config = RETRIES,
        ) -> Any:
            url = server.url if layer == "http" else UNREACHABLE_URL
            client = boto3.client(
                "ec2",
                region_name=region,
                endpoint_url=url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret,
                config=config,
            )
            if layer == "in-process":
                install_in_process(client, server.state)
            return client

        yield Fake(server.state, make_client, layer)


@pytest.fixture(scope="module")
def ca_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_crl(
    key: ec.EllipticCurvePrivateKey,
    entries: int,
    next_update: datetime.timedelta | None = None,
) -> str:
    """Build a PEM CRL with `entries` revoked serials 1..entries.

    Without `next_update` the CRL covers 2026-01-01 plus 180 days. With it,
    lastUpdate is one day ago and nextUpdate is now plus `next_update`.
    """
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    last_update, expiry = now, now + datetime.timedelta(days=180)
    if next_update is not None:
        now = datetime.datetime.now(datetime.UTC)
        last_update, expiry = now - datetime.timedelta(days=1), now + next_update
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake EC2 test CA")])
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(last_update)
        .next_update(expiry)
    )
    for serial in range(1, entries + 1):
        revoked = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now)
            .build()
        )
        builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def crl_pem(ca_key: ec.EllipticCurvePrivateKey) -> str:
    return make_crl(ca_key, 2)


def error_code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def http_status(error: pytest.ExceptionInfo[ClientError]) -> int:
    return int(error.value.response["ResponseMetadata"]["HTTPStatusCode"])


def attempts(state: FakeEC2State, action: str) -> list[int | None]:
    return [request.attempt for request in state.actions(action)]


def signed_post(
    url: str,
    params: dict[str, str],
    region: str = REGION,
    method: str = "POST",
) -> tuple[int, str]:
    """Send a SigV4-signed form request with urllib; return status and body."""
    body = urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    request = AWSRequest(method=method, url=url + "/", data=body, headers=headers)
    credentials = Credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
    SigV4Auth(credentials, "ec2", region).add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(
        url + "/", data=body, headers=dict(prepared.headers.items()), method=method
    )
    try:
        with urllib.request.urlopen(raw, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# ---------------------------------------------------------------- Describe


def test_describe_pages_through_all(fake: Fake) -> None:
    added = [fake.state.add_endpoint(REGION).endpoint_id for _ in range(8)]
    paginator = fake.client().get_paginator("describe_client_vpn_endpoints")
    pages = list(paginator.paginate())
    listed = [e["ClientVpnEndpointId"] for p in pages for e in p["ClientVpnEndpoints"]]
    assert listed == added
    assert [len(p["ClientVpnEndpoints"]) for p in pages] == [3, 3, 2]
    assert "NextToken" not in pages[-1]
    assert len(fake.state.actions(DESCRIBE)) == 3


def test_describe_max_results_limits_page(fake: Fake) -> None:
    fake.state.page_size = 100
    for _ in range(7):
        fake.state.add_endpoint(REGION)
    page = fake.client().describe_client_vpn_endpoints(MaxResults=5)
    assert len(page["ClientVpnEndpoints"]) == 5
    assert "NextToken" in page
    assert fake.state.actions(DESCRIBE)[0].params["MaxResults"] == "5"


def test_describe_max_results_above_limit(fake: Fake) -> None:
    with pytest.raises(ClientError) as error:
        fake.client().describe_client_vpn_endpoints(MaxResults=1001)
    assert error_code(error) == "InvalidParameterValue"
    assert http_status(error) == 400


def test_describe_bad_next_token(fake: Fake) -> None:
    with pytest.raises(ClientError) as error:
        fake.client().describe_client_vpn_endpoints(NextToken="not-a-token")
    assert error_code(error) == "InvalidPaginationToken"


def test_describe_by_ids(fake: Fake) -> None:
    first = fake.state.add_endpoint(REGION)
    fake.state.add_endpoint(REGION)
    third = fake.state.add_endpoint(REGION)
    requested = [third.endpoint_id, first.endpoint_id]
    found = fake.client().describe_client_vpn_endpoints(ClientVpnEndpointIds=requested)
    ids = {e["ClientVpnEndpointId"] for e in found["ClientVpnEndpoints"]}
    assert ids == set(requested)
    params = fake.state.actions(DESCRIBE)[0].params
    assert params["ClientVpnEndpointId.1"] == third.endpoint_id
    assert params["ClientVpnEndpointId.2"] == first.endpoint_id


def test_describe_unknown_id_not_found(fake: Fake) -> None:
    fake.state.add_endpoint(REGION)
    with pytest.raises(ClientError) as error:
        fake.client().describe_client_vpn_endpoints(
            ClientVpnEndpointIds=["cvpn-endpoint-00000000000000000"]
        )
    assert error_code(error) == "InvalidClientVpnEndpointId.NotFound"
    assert http_status(error) == 400
    assert "cvpn-endpoint-00000000000000000" in str(error.value)


def test_describe_filter_endpoint_id(fake: Fake) -> None:
    target = fake.state.add_endpoint(REGION)
    fake.state.add_endpoint(REGION)
    filters = [
        {"Name": "endpoint-id", "Values": [target.endpoint_id, "cvpn-endpoint-none"]}
    ]
    found = fake.client().describe_client_vpn_endpoints(Filters=filters)
    ids = [e["ClientVpnEndpointId"] for e in found["ClientVpnEndpoints"]]
    assert ids == [target.endpoint_id]
    params = fake.state.actions(DESCRIBE)[0].params
    assert params["Filter.1.Name"] == "endpoint-id"
    assert params["Filter.1.Value.2"] == "cvpn-endpoint-none"


def test_describe_filter_transport_protocol(fake: Fake) -> None:
    tcp = fake.state.add_endpoint(REGION, transport_protocol="tcp")
    fake.state.add_endpoint(REGION, transport_protocol="udp")
    filters = [{"Name": "transport-protocol", "Values": ["tcp"]}]
    found = fake.client().describe_client_vpn_endpoints(Filters=filters)
    ids = [e["ClientVpnEndpointId"] for e in found["ClientVpnEndpoints"]]
    assert ids == [tcp.endpoint_id]


def test_describe_unknown_filter(fake: Fake) -> None:
    filters = [{"Name": "tag:Name", "Values": ["vpn"]}]
    with pytest.raises(ClientError) as error:
        fake.client().describe_client_vpn_endpoints(Filters=filters)
    assert error_code(error) == "InvalidParameterValue"


def test_describe_endpoint_fields(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(
        REGION,
        "cvpn-endpoint-0123456789abcdef0",
        status="pending-associate",
        tags={"env": "prod", "Name": "a<b>&c"},
    )
    found = fake.client().describe_client_vpn_endpoints()["ClientVpnEndpoints"][0]
    assert found["ClientVpnEndpointId"] == "cvpn-endpoint-0123456789abcdef0"
    assert found["Status"] == {"Code": "pending-associate"}
    assert found["Tags"] == [
        {"Key": "env", "Value": "prod"},
        {"Key": "Name", "Value": "a<b>&c"},
    ]
    option = found["AuthenticationOptions"][0]
    assert option["Type"] == "certificate-authentication"
    chain = option["MutualAuthentication"]["ClientRootCertificateChain"]
    assert chain == endpoint.client_root_certificate_chain
    assert found["ConnectionLogOptions"] == {"Enabled": False}


def test_describe_directory_auth(fake: Fake) -> None:
    fake.state.add_endpoint(REGION, auth_type="directory-service-authentication")
    found = fake.client().describe_client_vpn_endpoints()["ClientVpnEndpoints"][0]
    option = found["AuthenticationOptions"][0]
    assert option["Type"] == "directory-service-authentication"
    assert "MutualAuthentication" not in option


def test_add_endpoint_id_format() -> None:
    endpoint = FakeEC2State().add_endpoint(REGION)
    assert re.fullmatch(r"cvpn-endpoint-[0-9a-f]{17}", endpoint.endpoint_id)


# ---------------------------------------------------------------- Export / Import


def test_export_never_imported(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    result = fake.client().export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert result["CertificateRevocationList"] == ""
    assert "Status" not in result
    assert endpoint.exports == 1


def test_export_never_imported_omitted(fake: Fake) -> None:
    fake.state.export_without_crl = "omit"
    endpoint = fake.state.add_endpoint(REGION)
    result = fake.client().export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert "CertificateRevocationList" not in result
    assert "Status" not in result


def test_import_then_export(fake: Fake, crl_pem: str) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    client = fake.client()
    result = client.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
    )
    assert result["Return"] is True
    assert endpoint.imports == 1
    assert endpoint.crl_pem == crl_pem
    assert endpoint.crl_status == "pending"

    statuses = []
    for _ in range(3):
        exported = client.export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id
        )
        assert exported["CertificateRevocationList"] == crl_pem
        statuses.append(exported["Status"]["Code"])
    assert statuses == ["pending", "active", "active"]
    assert endpoint.exports == 3


def test_pending_exports_setting(fake: Fake, crl_pem: str) -> None:
    fake.state.pending_exports_before_active = 3
    endpoint = fake.state.add_endpoint(REGION)
    client = fake.client()
    client.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
    )
    statuses = [
        client.export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id
        )["Status"]["Code"]
        for _ in range(4)
    ]
    assert statuses == ["pending", "pending", "pending", "active"]


def test_export_status_message(fake: Fake, crl_pem: str) -> None:
    endpoint = fake.state.add_endpoint(
        REGION, crl_pem=crl_pem, crl_status_message="applied"
    )
    exported = fake.client().export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert exported["Status"] == {"Code": "active", "Message": "applied"}


def test_reimport_counts_again(fake: Fake, crl_pem: str) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    client = fake.client()
    for _ in range(2):
        client.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
        )
    assert endpoint.imports == 2


def test_import_invalid_pem(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id,
            CertificateRevocationList="pki/crl.pem",
        )
    assert error_code(error) == "InvalidParameterValue"
    assert http_status(error) == 400
    assert endpoint.imports == 0
    assert endpoint.crl_pem is None


def test_import_unknown_endpoint(fake: Fake, crl_pem: str) -> None:
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId="cvpn-endpoint-00000000000000000",
            CertificateRevocationList=crl_pem,
        )
    assert error_code(error) == "InvalidClientVpnEndpointId.NotFound"


def test_import_deleted_endpoint(fake: Fake, crl_pem: str) -> None:
    endpoint = fake.state.add_endpoint(REGION, status="deleted")
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
        )
    assert error_code(error) == "InvalidClientVpnEndpointId.NotFound"
    assert endpoint.imports == 0


def test_entry_limit_boundary(fake: Fake, ca_key: ec.EllipticCurvePrivateKey) -> None:
    fake.state.max_entries = 3
    endpoint = fake.state.add_endpoint(REGION)
    client = fake.client()
    client.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id,
        CertificateRevocationList=make_crl(ca_key, 3),
    )
    with pytest.raises(ClientError) as error:
        client.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id,
            CertificateRevocationList=make_crl(ca_key, 4),
        )
    assert error_code(error) == "InvalidParameterValue"
    assert endpoint.imports == 1


def test_crl_over_20000_rejected(
    fake_ec2: FakeEC2Server, ca_key: ec.EllipticCurvePrivateKey, no_retry_sleep: None
) -> None:
    endpoint = fake_ec2.state.add_endpoint(REGION)
    client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=fake_ec2.url,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=RETRIES,
    )
    with pytest.raises(ClientError) as error:
        client.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id,
            CertificateRevocationList=make_crl(ca_key, 20001),
        )
    assert error_code(error) == "InvalidParameterValue"
    assert "20001" in str(error.value)
    assert endpoint.imports == 0
    assert endpoint.crl_pem is None


def make_ca(key: ec.EllipticCurvePrivateKey, name: str = "Fake EC2 test CA") -> str:
    """Build a self-signed PEM CA certificate for `key` with CN `name`."""
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_issuer_check_accepts_own_ca(
    fake: Fake, ca_key: ec.EllipticCurvePrivateKey, crl_pem: str
) -> None:
    endpoint = fake.state.add_endpoint(REGION, ca_certificate_pem=make_ca(ca_key))
    fake.client().import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
    )
    assert endpoint.imports == 1


def test_issuer_check_rejects_other_key(fake: Fake, crl_pem: str) -> None:
    # Same subject name, different key: only the signature check catches it.
    other_ca = make_ca(ec.generate_private_key(ec.SECP256R1()))
    endpoint = fake.state.add_endpoint(REGION, ca_certificate_pem=other_ca)
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
        )
    assert error_code(error) == "InvalidParameterValue"
    assert endpoint.imports == 0


def test_issuer_check_rejects_other_name(
    fake: Fake, ca_key: ec.EllipticCurvePrivateKey, crl_pem: str
) -> None:
    endpoint = fake.state.add_endpoint(
        REGION, ca_certificate_pem=make_ca(ca_key, "Another CA")
    )
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
        )
    assert error_code(error) == "InvalidParameterValue"
    assert "Another CA" in str(error.value)


def test_expired_crl_accepted_by_default(
    fake: Fake, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    expired = make_crl(ca_key, 1, next_update=datetime.timedelta(seconds=-1))
    fake.client().import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=expired
    )
    assert endpoint.imports == 1


def test_expired_crl_rejected_when_set(
    fake: Fake, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    fake.state.reject_expired_crls = True
    endpoint = fake.state.add_endpoint(REGION)
    expired = make_crl(ca_key, 1, next_update=datetime.timedelta(seconds=-1))
    current = make_crl(ca_key, 1, next_update=datetime.timedelta(days=1))
    client = fake.client()
    with pytest.raises(ClientError) as error:
        client.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=expired
        )
    assert error_code(error) == "InvalidParameterValue"
    assert "expired" in str(error.value)
    client.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=current
    )
    assert endpoint.imports == 1


def test_crl_text_survives_byte_for_byte(fake: Fake, crl_pem: str) -> None:
    # Text before the PEM header is legal, and guarantees every character
    # that form encoding must escape is present.
    text = "Note: a+b/c=d & 100%\r\n" + crl_pem.replace("\n", "\r\n") + "\n"
    endpoint = fake.state.add_endpoint(REGION)
    client = fake.client()
    client.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=text
    )
    assert fake.state.actions(IMPORT)[0].params["CertificateRevocationList"] == text
    assert endpoint.crl_pem == text
    exported = client.export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert exported["CertificateRevocationList"] == text


# ---------------------------------------------------------------- DryRun and permissions


def call_with_dry_run(client: Any, action: str, endpoint_id: str, crl: str) -> None:
    if action == DESCRIBE:
        client.describe_client_vpn_endpoints(DryRun=True)
    elif action == EXPORT:
        client.export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, DryRun=True
        )
    else:
        client.import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint_id, CertificateRevocationList=crl, DryRun=True
        )


@pytest.mark.parametrize("action", [DESCRIBE, EXPORT, IMPORT])
def test_dry_run_allowed(fake: Fake, crl_pem: str, action: str) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    with pytest.raises(ClientError) as error:
        call_with_dry_run(fake.client(), action, endpoint.endpoint_id, crl_pem)
    assert error_code(error) == "DryRunOperation"
    assert http_status(error) == 412
    assert fake.state.actions(action)[0].dry_run is True
    assert endpoint.imports == 0
    assert endpoint.exports == 0
    assert endpoint.crl_pem is None


@pytest.mark.parametrize("action", [DESCRIBE, EXPORT, IMPORT])
def test_dry_run_denied(fake: Fake, crl_pem: str, action: str) -> None:
    fake.state.allowed_actions.discard(action)
    endpoint = fake.state.add_endpoint(REGION)
    with pytest.raises(ClientError) as error:
        call_with_dry_run(fake.client(), action, endpoint.endpoint_id, crl_pem)
    assert error_code(error) == "UnauthorizedOperation"
    assert http_status(error) == 403
    assert endpoint.imports == 0


def test_denied_real_call(fake: Fake, crl_pem: str) -> None:
    fake.state.allowed_actions = {DESCRIBE, EXPORT}
    endpoint = fake.state.add_endpoint(REGION)
    with pytest.raises(ClientError) as error:
        fake.client().import_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
        )
    assert error_code(error) == "UnauthorizedOperation"
    assert endpoint.imports == 0
    assert len(fake.state.actions(IMPORT)) == 1


# ---------------------------------------------------------------- faults and retries

# fault -> (error code botocore reports, attempts made with 3 allowed)
FAULT_OUTCOMES = {
    "throttle": ("RequestLimitExceeded", 3),
    "server-error": ("InternalError", 3),
    "html-500": ("500", 3),
    "empty-500": ("500", 3),
    "not-found": ("InvalidClientVpnEndpointId.NotFound", 1),
    "unauthorized": ("UnauthorizedOperation", 1),
    "auth-failure": ("AuthFailure", 1),
}


@pytest.mark.parametrize("fault", sorted(FAULT_OUTCOMES))
def test_fault_persistent(fake: Fake, fault: str) -> None:
    code, expected_attempts = FAULT_OUTCOMES[fault]
    endpoint = fake.state.add_endpoint(REGION)
    fake.state.inject(EXPORT, fault, count=5)
    with pytest.raises(ClientError) as error:
        fake.client().export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id
        )
    assert error_code(error) == code
    assert attempts(fake.state, EXPORT) == list(range(1, expected_attempts + 1))
    assert endpoint.exports == 0
    if expected_attempts > 1:
        assert "reached max retries: 2" in str(error.value)


def test_throttle_then_success(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    fake.state.inject(None, "throttle", count=2)
    fake.client().export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert attempts(fake.state, EXPORT) == [1, 2, 3]
    assert endpoint.exports == 1


def test_throttle_status_option(fake: Fake) -> None:
    # Standard mode retries throttling codes whatever the HTTP status.
    fake.state.inject(DESCRIBE, "throttle", count=3, status=400)
    with pytest.raises(ClientError) as error:
        fake.client().describe_client_vpn_endpoints()
    assert error_code(error) == "RequestLimitExceeded"
    assert http_status(error) == 400
    assert attempts(fake.state, DESCRIBE) == [1, 2, 3]


def test_fault_limited_to_action(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    fake.state.inject(IMPORT, "server-error")
    client = fake.client()
    client.describe_client_vpn_endpoints()
    client.export_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id
    )
    assert attempts(fake.state, DESCRIBE) == [1]
    assert attempts(fake.state, EXPORT) == [1]


def test_malformed_response(fake: Fake) -> None:
    fake.state.inject(DESCRIBE, "malformed", count=3)
    with pytest.raises(ResponseParserError):
        fake.client().describe_client_vpn_endpoints()
    assert attempts(fake.state, DESCRIBE) == [1]


def test_dropped_connection(fake: Fake) -> None:
    endpoint = fake.state.add_endpoint(REGION)
    fake.state.inject(EXPORT, "drop", count=3)
    with pytest.raises(ConnectionClosedError):
        fake.client().export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id
        )
    assert attempts(fake.state, EXPORT) == [1, 2, 3]
    assert endpoint.exports == 0


def test_slow_response_times_out(fake_ec2: FakeEC2Server, no_retry_sleep: None) -> None:
    config = RETRIES.merge(Config(read_timeout=0.2, connect_timeout=1))
    client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=fake_ec2.url,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=config,
    )
    fake_ec2.state.inject(DESCRIBE, "slow", count=3, seconds=2)
    with pytest.raises(ReadTimeoutError):
        client.describe_client_vpn_endpoints()
    assert attempts(fake_ec2.state, DESCRIBE) == [1, 2, 3]


def test_slow_response_arrives(fake: Fake) -> None:
    fake.state.inject(DESCRIBE, "slow", seconds=0.1)
    result = fake.client().describe_client_vpn_endpoints()
    assert result["ClientVpnEndpoints"] == []


def test_handler_bug_becomes_500(monkeypatch: pytest.MonkeyPatch) -> None:
    state = FakeEC2State()

    def fail(*_: object) -> str:
        raise RuntimeError("bug in the fake")

    monkeypatch.setattr(state, "_dispatch", fail)
    client = boto3.client(
        "ec2",
        region_name=REGION,
        endpoint_url=UNREACHABLE_URL,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    install_in_process(client, state)
    with pytest.raises(ClientError) as error:
        client.describe_client_vpn_endpoints()
    assert error_code(error) == "FakeEC2HandlerError"
    assert http_status(error) == 500
    assert len(state.handler_errors) == 1


def test_inject_rejects_bad_options() -> None:
    state = FakeEC2State()
    with pytest.raises(ValueError, match="seconds"):
        state.inject(None, "slow")
    with pytest.raises(TypeError, match="status"):
        state.inject(None, "throttle", status="503")
    with pytest.raises(ValueError, match="at least 1"):
        state.inject(None, "throttle", count=0)


def test_inject_unknown_fault() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FakeEC2State().inject(None, "explode")


# ---------------------------------------------------------------- regions and signatures


def test_region_isolation(fake: Fake, crl_pem: str) -> None:
    endpoint = fake.state.add_endpoint(OTHER_REGION)
    with pytest.raises(ClientError) as error:
        fake.client(region=REGION).export_client_vpn_client_certificate_revocation_list(
            ClientVpnEndpointId=endpoint.endpoint_id
        )
    assert error_code(error) == "InvalidClientVpnEndpointId.NotFound"
    other = fake.client(region=OTHER_REGION)
    other.import_client_vpn_client_certificate_revocation_list(
        ClientVpnEndpointId=endpoint.endpoint_id, CertificateRevocationList=crl_pem
    )
    assert endpoint.imports == 1
    assert [r.region for r in fake.state.actions()] == [REGION, OTHER_REGION]
    assert (
        fake.client(region=REGION).describe_client_vpn_endpoints()["ClientVpnEndpoints"]
        == []
    )


def test_wrong_secret_auth_failure(fake: Fake) -> None:
    with pytest.raises(ClientError) as error:
        fake.client(secret="not-the-dummy-secret").describe_client_vpn_endpoints()
    assert error_code(error) == "AuthFailure"
    assert http_status(error) == 401
    assert attempts(fake.state, DESCRIBE) == [1]


def test_unknown_access_key_auth_failure(fake: Fake) -> None:
    with pytest.raises(ClientError) as error:
        fake.client(access_key="AKIAUNKNOWN000000000").describe_client_vpn_endpoints()
    assert error_code(error) == "AuthFailure"


def test_unsigned_request_auth_failure(fake_ec2: FakeEC2Server) -> None:
    body = urlencode({"Action": DESCRIBE, "Version": API_VERSION}).encode()
    request = urllib.request.Request(fake_ec2.url + "/", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 401
    assert "<Code>AuthFailure</Code>" in error.value.read().decode()
    assert fake_ec2.state.actions(DESCRIBE)[0].region == ""


def test_unknown_action(fake_ec2: FakeEC2Server) -> None:
    status, body = signed_post(
        fake_ec2.url, {"Action": "DescribeInstances", "Version": API_VERSION}
    )
    assert status == 400
    assert "<Code>InvalidAction</Code>" in body
    assert "<RequestID>" in body


def test_wrong_version(fake_ec2: FakeEC2Server) -> None:
    status, body = signed_post(
        fake_ec2.url, {"Action": DESCRIBE, "Version": "2015-10-01"}
    )
    assert status == 400
    assert "<Code>InvalidParameterValue</Code>" in body


def test_missing_parameter(fake_ec2: FakeEC2Server) -> None:
    fake_ec2.state.add_endpoint(REGION, "cvpn-endpoint-0123456789abcdef0")
    params = {
        "Action": IMPORT,
        "Version": API_VERSION,
        "ClientVpnEndpointId": "cvpn-endpoint-0123456789abcdef0",
    }
    status, body = signed_post(fake_ec2.url, params)
    assert status == 400
    assert "<Code>MissingParameter</Code>" in body


def test_non_utf8_body_rejected(fake_ec2: FakeEC2Server) -> None:
    request = urllib.request.Request(
        fake_ec2.url + "/", data=b"\xff\xfe", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=5)
    assert error.value.code == 400
    assert "<Code>InvalidParameterValue</Code>" in error.value.read().decode()
    assert len(fake_ec2.state.requests) == 1


def test_success_document_shape(fake_ec2: FakeEC2Server) -> None:
    status, body = signed_post(
        fake_ec2.url, {"Action": DESCRIBE, "Version": API_VERSION}
    )
    assert status == 200
    assert (
        '<DescribeClientVpnEndpointsResponse xmlns="http://ec2.amazonaws.com/doc/'
        '2016-11-15/"><requestId>'
    ) in body


# ---------------------------------------------------------------- environment


def test_environment_drops_aws_and_proxy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("no_proxy", "example.invalid")
    environment = aws_environment(tmp_path, "http://127.0.0.1:1", region=OTHER_REGION)
    aws_names = sorted(name for name in environment if name.startswith("AWS_"))
    assert aws_names == [
        "AWS_ACCESS_KEY_ID",
        "AWS_CONFIG_FILE",
        "AWS_DEFAULT_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_ENDPOINT_URL_EC2",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SHARED_CREDENTIALS_FILE",
    ]
    assert "HTTPS_PROXY" not in environment
    assert "no_proxy" not in environment
    assert environment["AWS_DEFAULT_REGION"] == OTHER_REGION
    assert environment["AWS_EC2_METADATA_DISABLED"] == "true"
    assert Path(environment["AWS_CONFIG_FILE"]).read_text() == ""
    assert Path(environment["AWS_SHARED_CREDENTIALS_FILE"]).read_text() == ""


def test_environment_without_url(tmp_path: Path) -> None:
    assert "AWS_ENDPOINT_URL_EC2" not in aws_environment(tmp_path)


def test_subprocess_reaches_fake(
    fake_ec2: FakeEC2Server, aws_env: dict[str, str]
) -> None:
    endpoint = fake_ec2.state.add_endpoint(REGION)
    script = (
        "import boto3\n"
        "page = boto3.client('ec2').describe_client_vpn_endpoints()\n"
        "print(page['ClientVpnEndpoints'][0]['ClientVpnEndpointId'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=aws_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == endpoint.endpoint_id
    assert fake_ec2.state.actions(DESCRIBE)[0].region == REGION
