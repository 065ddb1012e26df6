"""Test data of the seal domain: pictures, a one-page PDF, and seals made through the service."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from typing import Any

from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from sqlalchemy.orm import Session

from ops.cli import CLI_ADMIN
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import utcnow
from seal import service
from seal.models import Seal
from seal.schemas import SealCreate


def png_picture(size: int = 240) -> bytes:
    """A red round seal picture, as a PNG."""
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, size - 4, size - 4), outline=(220, 0, 0, 255), width=8)
    draw.regular_polygon((size / 2, size / 2, size / 6), 5, fill=(220, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


SVG_PICTURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
    b'<circle cx="50" cy="50" r="46" fill="none" stroke="#d00" stroke-width="4"/></svg>'
)


def one_page_pdf(text: str = "Notice of approval") -> bytes:
    """A minimal A4 one-page PDF with a line of text."""
    writer = PdfFileWriter()
    font = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Font"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Type1"),
            generic.pdf_name("/BaseFont"): generic.pdf_name("/Helvetica"),
        }
    )
    resources = generic.DictionaryObject(
        {generic.pdf_name("/Font"): generic.DictionaryObject({generic.pdf_name("/F1"): writer.add_object(font)})}
    )
    stream = generic.StreamObject(stream_data=f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode())
    writer.insert_page(PageObject(contents=writer.add_object(stream), media_box=(0, 0, 595, 842), resources=resources))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def seal_body(department_id: str, *, algorithm: str = "ES256", seal_type: str = "公章", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "department_id": department_id,
        "name": "测试市市场监督管理局",
        "seal_type": seal_type,
        "algorithm": algorithm,
        "picture": {"type": "png", "data_base64": base64.b64encode(png_picture()).decode(), "width_mm": 42, "height_mm": 42},
        "valid_to": (utcnow() + timedelta(days=365)).isoformat(),
    }
    body.update(overrides)
    return body


def make_seal(db: Session, vault: KeyVault, department_id: str, *, algorithm: str = "ES256", seal_type: str = "公章") -> Seal:
    """Issue a seal directly through the service (as the platform administrator)."""
    seal = service.issue_seal(
        db,
        who=CLI_ADMIN,
        vault=vault,
        settings=Settings(),
        data=SealCreate.model_validate(seal_body(department_id, algorithm=algorithm, seal_type=seal_type)),
    )
    db.flush()
    return seal


def hub_tsa(db: Session, vault: KeyVault) -> Any:
    """An RFC 3161 time-stamp authority for tests, certified by the hub's issuing CA."""
    from asn1crypto import keys as asn1_keys
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    from seal import authority
    from seal import pdf as pades

    hub_ca = authority.ensure_authority(db, vault)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test TSA signs with RSA
    tsa_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "govhub test TSA")]))
        .issuer_name(hub_ca.issuing.certificate.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - timedelta(hours=1))
        .not_valid_after(utcnow() + timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(hub_ca.issuing.private, hashes.SHA256())
    )
    der_key = tsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return DummyTimeStamper(
        tsa_cert=pades.asn1_cert(tsa_cert), tsa_key=asn1_keys.PrivateKeyInfo.load(der_key), certs_to_embed=None
    )


def authorise_on_department_seals(
    hub: Any, department_id: str, subject: str, *, kind: str = "client", may_approve: bool = False
) -> None:
    """As the department's administrator: authorise `subject` to use every seal the department has now (用印授权)."""
    from sqlalchemy import select

    from ops.auth import Principal, Role

    admin = Principal(subject="部门管理员", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=department_id)
    with hub.factory() as db:
        for seal in db.scalars(select(Seal).where(Seal.department_id == department_id)).all():
            service.authorise(
                db,
                who=admin,
                seal_id=seal.id,
                subject=subject,
                subject_kind=kind,
                may_use=True,
                may_approve=may_approve,
                note=None,
            )
        db.commit()


def sealer(hub: Any, department: Any, name: str = "部门系统") -> Any:
    """A department system authorised to use every seal its department has now."""
    system = hub.system(department, name=name)
    authorise_on_department_seals(hub, department.id, system.client.client_id)
    return system


def grant(
    db: Session, seal_id: str, subject: str, *, kind: str = "person", may_use: bool = True, may_approve: bool = False
) -> None:
    """As the seal's department administrator, in the caller's session: authorise `subject` on one seal."""
    from ops.auth import Principal, Role

    seal = db.get(Seal, seal_id)
    assert seal is not None
    admin = Principal(subject="部门管理员", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=seal.department_id)
    service.authorise(
        db, who=admin, seal_id=seal_id, subject=subject, subject_kind=kind, may_use=may_use, may_approve=may_approve, note=None
    )


def ltv_tsa(
    db: Session, vault: KeyVault, *, public_url: str, years: int = 5, not_before: Any = None, declares_crl: bool = False
) -> Any:
    """A time-stamp authority for long-term validation tests, certified by the hub's issuing CA for `years`; with
    `declares_crl` its certificate names the hub's P-256 CRL (a validator then wants that CRL, fresh, for it)."""
    from asn1crypto import keys as asn1_keys
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

    from seal import authority, sm2ca
    from seal import pdf as pades

    hub_ca = authority.ensure_authority(db, vault)
    start = not_before or utcnow() - timedelta(hours=1)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test TSA signs with RSA
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(sm2ca.crl_url_p256(public_url))], None, None, None)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"govhub test TSA {years}y")]))
        .issuer_name(hub_ca.issuing.certificate.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * years))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(hub_ca.issuing.private.public_key()), critical=False)
    )
    if declares_crl:
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    tsa_cert = builder.sign(hub_ca.issuing.private, hashes.SHA256())
    der_key = tsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return DummyTimeStamper(
        tsa_cert=pades.asn1_cert(tsa_cert),
        tsa_key=asn1_keys.PrivateKeyInfo.load(der_key),
        certs_to_embed=[pades.asn1_cert(hub_ca.issuing.certificate)],  # type: ignore[list-item]
    )


OFD_NS = "http://www.ofdspec.org/2016"


def plain_ofd(
    pages: int = 1, text: str = "关于开展政务数据共享工作的通知", *, width_mm: int = 210, height_mm: int = 297
) -> bytes:
    """An unsealed OFD document (GB/T 33190) of A4 pages with a line of text each, as a typical producer writes it."""
    import zipfile

    head = '<?xml version="1.0" encoding="UTF-8"?>\n'
    files = {
        "OFD.xml": f'{head}<ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo>'
        "<ofd:DocID>6f1d3c0a9b8e4f2a8c7d6e5f4a3b2c1d</ofd:DocID><ofd:CreationDate>2026-12-01</ofd:CreationDate>"
        "<ofd:Creator>测试公文系统</ofd:Creator></ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot>"
        "</ofd:DocBody></ofd:OFD>",
        "Doc_0/PublicRes.xml": f'{head}<ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:Fonts>'
        '<ofd:Font ID="2" FontName="宋体" FamilyName="宋体"/></ofd:Fonts></ofd:Res>',
        "Doc_0/Document.xml": f'{head}<ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData>'
        f"<ofd:MaxUnitID>{10 + pages * 2}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 {width_mm} {height_mm}"
        "</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData><ofd:Pages>"
        + "".join(f'<ofd:Page ID="{10 + i * 2}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(pages))
        + "</ofd:Pages></ofd:Document>",
    }
    for i in range(pages):
        line = f"{text}（第{i + 1}页）"
        deltas = " ".join(["5"] * (len(line) - 1))
        files[f"Doc_0/Pages/Page_{i}/Content.xml"] = (
            f'{head}<ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content><ofd:Layer ID="{11 + i * 2}">'
            f'<ofd:TextObject ID="{100 + i}" Boundary="25 30 170 8" Font="2" Size="5">'
            f'<ofd:FillColor Value="0 0 0"/><ofd:TextCode X="0" Y="5" DeltaX="{deltas}">{line}</ofd:TextCode>'
            "</ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>"
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, body in files.items():
            package.writestr(name, body.encode())
    return out.getvalue()
