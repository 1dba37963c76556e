"""HTTPS: connect to the checked IP, but send SNI and verify the certificate for the link's name.

A throwaway CA signs a certificate for ``photos.test``; an HTTPS server on 127.0.0.1 presents
it and records the SNI it receives.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import intake
from dishlens.settings import Settings
from intake import fetch
from intake.errors import InsecureConnectionError
from tests.intake import photos
from tests.intake.conftest import ImageServer
from tests.support.network import Network

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


@dataclass
class TLSServer:
    server: ImageServer
    ca_file: Path
    sni: list[str | None]

    def url(self, host: str) -> str:
        return f"https://{host}:{self.server.port}/photo.jpg"


def _certificate(subject: str, issuer_key, issuer: str, key, *, ca: bool, names=()) -> object:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    folder = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("DishLens test CA", ca_key, "DishLens test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(
        "photos.test", ca_key, "DishLens test CA", key, ca=False, names=["photos.test"]
    )
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "leaf.pem").write_bytes(_pem(leaf))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sni: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "leaf.pem", folder / "key.pem")
    context.sni_callback = lambda sock, name, ctx: sni.append(name)
    routes = {"/photo.jpg": lambda handler, query: handler.reply(photos.photo("JPEG"))}
    server = ImageServer(routes)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield TLSServer(server, folder / "ca.pem", sni)
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls(tls_server: TLSServer, network: Network) -> TLSServer:
    tls_server.sni.clear()
    tls_server.server.seen.clear()
    network.dns.update({"photos.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    return tls_server


@pytest.fixture
def trust_test_ca(tls: TLSServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_ca_certs", lambda: str(tls.ca_file))


@pytest.mark.usefixtures("trust_test_ca")
def test_https_verifies_the_link_name_while_connecting_to_the_checked_ip(
    tls: TLSServer, settings: Settings, network: Network
) -> None:
    image = intake.image_from_url(tls.url("photos.test"), settings=settings)
    assert image.size == (64, 48)
    assert tls.sni == ["photos.test"]
    assert network.connects == [("127.0.0.1", tls.server.port)]
    assert network.lookups.count("photos.test") == 1
    assert tls.server.seen[-1]["headers"]["Host"] == f"photos.test:{tls.server.port}"


@pytest.mark.usefixtures("trust_test_ca")
def test_certificate_for_another_name_is_refused(tls: TLSServer, settings: Settings) -> None:
    with pytest.raises(InsecureConnectionError) as caught:
        intake.image_from_url(tls.url("other.test"), settings=settings)
    assert type(caught.value) is InsecureConnectionError
    assert tls.sni == ["other.test"]
    assert tls.server.seen == []


@pytest.mark.usefixtures("trust_test_ca")
def test_certificate_is_checked_against_an_ip_literal(tls: TLSServer, settings: Settings) -> None:
    with pytest.raises(InsecureConnectionError):
        intake.image_from_url(tls.url("127.0.0.1"), settings=settings)
    assert tls.sni == [None]  # no SNI for an IP; the certificate must name the IP itself
    assert tls.server.seen == []


def test_untrusted_certificate_is_refused(tls: TLSServer, settings: Settings) -> None:
    with pytest.raises(InsecureConnectionError):
        intake.image_from_url(tls.url("photos.test"), settings=settings)
    assert tls.server.seen == []
