"""The published catalogue as DCAT-AP JSON-LD (Catalog, Dataset, Distribution, DataService), a page at a time."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from ops import audit
from ops.auth import Principal
from ops.errors import Invalid
from ops.pagination import decode_cursor, encode_cursor

EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
FREQUENCIES = {
    "realtime": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "semiannual": "ANNUAL_2",
    "annual": "ANNUAL",
}
ACCESS_RIGHTS = {"open": "PUBLIC", "conditional": "RESTRICTED", "not_open": "NON_PUBLIC"}
MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"
DCAT_PAGE = 500


def dcat_context(base_url: str) -> dict[str, Any]:
    return {
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "hydra": "http://www.w3.org/ns/hydra/core#",
        "govhub": f"{base_url}/ns/catalog#",
        "dct:issued": {"@type": "xsd:dateTime"},
        "dct:modified": {"@type": "xsd:dateTime"},
    }


def _zh(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "zh"}


def dcat_catalog(db: Session, *, who: Principal, base_url: str, cursor: str | None, limit: int = DCAT_PAGE) -> dict[str, Any]:
    """The published catalogue as DCAT-AP JSON-LD (Catalog, Dataset, Distribution, DataService), a page at a time."""
    if limit < 1 or limit > 2000:
        raise Invalid("limit must be between 1 and 2000", errors=[{"field": "limit", "message": "out of range"}])
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = repository.published_page(db, after_code=after, limit=limit + 1)
    page = rows[:limit]
    departments = repository.department_names(db, [e.provider_department_id for e, _ in page])
    datasets = {
        d.id: d for d in (repository.dataset_by_id(db, e.current_dataset_id) for e, _ in page if e.current_dataset_id) if d
    }
    self_url = f"{base_url}/catalog/dcat.jsonld"
    dataset_nodes, service_nodes = [], []
    for entry, version in page:
        provider = departments[entry.provider_department_id]
        entry_url = f"{base_url}/catalog/entries/{entry.id}"
        node: dict[str, Any] = {
            "@id": entry_url,
            "@type": "dcat:Dataset",
            "dct:identifier": entry.code,
            "dct:title": _zh(version.name),
            "dct:description": _zh(version.abstract),
            "dct:publisher": {
                "@id": f"{base_url}/departments/{provider.id}",
                "@type": "foaf:Agent",
                "foaf:name": _zh(provider.name),
                "dct:identifier": provider.code,
            },
            "dct:issued": (version.published_at or entry.created_at).isoformat(),
            "dct:modified": (version.published_at or entry.updated_at).isoformat(),
            "dct:accrualPeriodicity": {"@id": EU_FREQUENCY + FREQUENCIES[version.update_cycle]},
            "dct:accessRights": {"@id": EU_ACCESS + ACCESS_RIGHTS[version.open_attribute]},
            "dcat:keyword": [_zh(i["name"]) for i in version.items],
            "dcat:landingPage": {"@id": entry_url},
            "dcat:version": str(version.number),
            "govhub:sharingType": version.sharing_type,
            "govhub:classification": version.classification,
            "govhub:electronicCertificate": version.is_certificate,
        }
        if version.conditions:
            node["govhub:sharingConditions"] = _zh(version.conditions)
        if version.legal_basis:
            node["govhub:legalBasis"] = _zh(version.legal_basis)
        distributions = []
        if version.serves_dataset:
            current = datasets.get(entry.current_dataset_id or "")
            media = current.media_type if current else "text/csv"
            distributions.append(
                {
                    "@id": f"{entry_url}#dataset",
                    "@type": "dcat:Distribution",
                    "dct:title": _zh(f"{version.name}（数据集）"),
                    "dcat:accessURL": {"@id": entry_url},
                    "dcat:mediaType": {"@id": MEDIA_TYPES + media},
                }
            )
        if version.api:
            service_id = f"{entry_url}#api"
            distributions.append(
                {
                    "@id": f"{entry_url}#api-distribution",
                    "@type": "dcat:Distribution",
                    "dct:title": _zh(f"{version.name}（接口）"),
                    "dcat:accessURL": {"@id": entry_url},
                    "dcat:accessService": {"@id": service_id},
                }
            )
            service_nodes.append(
                {
                    "@id": service_id,
                    "@type": "dcat:DataService",
                    "dct:title": _zh(f"{version.name}接口"),
                    "dcat:endpointURL": {"@id": entry_url},
                    "dcat:servesDataset": {"@id": entry_url},
                    "dct:publisher": {"@id": f"{base_url}/departments/{provider.id}"},
                }
            )
        if distributions:
            node["dcat:distribution"] = distributions
        dataset_nodes.append(node)
    document: dict[str, Any] = {
        "@context": dcat_context(base_url),
        "@id": self_url,
        "@type": "dcat:Catalog",
        "dct:title": _zh("政务数据资源目录"),
        "dct:description": _zh("政务数据共享交换平台已发布的数据资源目录。"),
        "dct:publisher": {"@id": f"{base_url}/#platform", "@type": "foaf:Agent", "foaf:name": _zh("政务数据共享交换平台")},
        "dcat:dataset": dataset_nodes,
        "dcat:service": service_nodes,
    }
    if len(rows) > limit:
        next_cursor = encode_cursor([page[-1][0].code])
        document["hydra:view"] = {
            "@id": f"{self_url}?cursor={cursor}" if cursor else self_url,
            "@type": "hydra:PartialCollectionView",
            "hydra:next": {"@id": f"{self_url}?cursor={next_cursor}&limit={limit}"},
        }
    audit.record(
        db, actor=who, action="catalog.dcat.export", object_type="catalog", object_id="dcat", detail={"datasets": len(page)}
    )
    return document
