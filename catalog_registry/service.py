"""The catalogue's one public surface: other packages (endpoints, console, cli, the exchange, tests) import it.

Where each concern lives:

- `sharing.py`, the contract with the exchange: what the sharing exchange builds on: the view of a
  published entry version (`SharingView`), the classified rule (涉密: `classified_problems`,
  `ensure_shareable`), and the data paths: lookups (`lookup_rows`, read ahead by `prefetch_rows`) and
  exports (`export_rows`);
- `entries.py`: entries and their lifecycle: register, edit a draft, new version, submit, review
  (publish or return), retire, and what a caller sees of them;
- `datasets.py`: a dataset upload (CSV or JSON Lines), checked against the items, loaded in batches and
  keyed by the control parameters;
- `versions.py`: dataset versions: each version's change set by key (added, changed, removed), written
  in the upload's transaction and taken by the exchange's outbox (`pending_change_sets`,
  `take_change_set`, `changes`), and serving a version by number;
- `search.py`: the search index of published entries, and search;
- `demands.py`: supply and demand (供需对接);
- `responsibility.py`: the responsibility list (共享责任清单), as JSON or a spreadsheet;
- `importing.py`: import from the departments' spreadsheet template;
- `dcat.py`: the DCAT-AP export;
- `regions.py`: 数据回流: an entry's division item, the division codes of dataset rows, a grant's division
  scope (`grant_region_scope`) and the one row filter every data path applies (`region_predicate`);
- `common.py`: small helpers several of those share; `repository.py`: every query.

This module defines nothing: it re-exports.
"""

from __future__ import annotations

from catalog_registry.datasets import list_datasets, media_type_of, text_lines, upload_dataset
from catalog_registry.dcat import DCAT_PAGE, dcat_catalog
from catalog_registry.demands import answer_demand, decline_demand, get_demand, list_demands, post_demand, withdraw_demand
from catalog_registry.entries import (
    SEARCHER_ROLES,
    create_entry,
    entry_actions,
    entry_read,
    get_entry,
    list_entries,
    list_versions,
    new_version,
    retire,
    review,
    submit,
    update_draft,
)
from catalog_registry.importing import ImportReport, import_entries
from catalog_registry.models import Classification, SharingType, UpdateCycle, VersionState
from catalog_registry.regions import RegionUnknown, grant_region_scope, in_scope, region_predicate
from catalog_registry.responsibility import responsibility_csv, responsibility_list
from catalog_registry.schemas import EntryRead, ReviewDecision
from catalog_registry.search import providers, search
from catalog_registry.sharing import (
    PREFETCH_ROWS,
    ApiDistributionView,
    ClassifiedNotShared,
    ControlParameter,
    ItemView,
    ReadAhead,
    RowQuery,
    Rows,
    SharingView,
    classified_items,
    classified_problems,
    ensure_shareable,
    export_rows,
    get_published_for_sharing,
    get_version_for_sharing,
    lookup_key,
    lookup_many,
    lookup_rows,
    prefetch_rows,
    rows_within,
    shared_entries_holding_classified,
)
from catalog_registry.versions import (
    ChangeSetView,
    ChangeView,
    VersionNotCovered,
    changes,
    pending_change_sets,
    take_change_set,
)

# The public surface: what the modules above hold.
__all__ = [
    "DCAT_PAGE",
    "PREFETCH_ROWS",
    "SEARCHER_ROLES",
    "ApiDistributionView",
    "ChangeSetView",
    "ChangeView",
    "Classification",
    "ClassifiedNotShared",
    "ControlParameter",
    "EntryRead",
    "ImportReport",
    "ItemView",
    "ReadAhead",
    "RegionUnknown",
    "ReviewDecision",
    "RowQuery",
    "Rows",
    "SharingType",
    "SharingView",
    "UpdateCycle",
    "VersionNotCovered",
    "VersionState",
    "answer_demand",
    "changes",
    "classified_items",
    "classified_problems",
    "create_entry",
    "dcat_catalog",
    "decline_demand",
    "ensure_shareable",
    "entry_actions",
    "entry_read",
    "export_rows",
    "get_demand",
    "get_entry",
    "get_published_for_sharing",
    "get_version_for_sharing",
    "grant_region_scope",
    "import_entries",
    "in_scope",
    "list_datasets",
    "list_demands",
    "list_entries",
    "list_versions",
    "lookup_key",
    "lookup_many",
    "lookup_rows",
    "media_type_of",
    "new_version",
    "pending_change_sets",
    "post_demand",
    "prefetch_rows",
    "providers",
    "region_predicate",
    "responsibility_csv",
    "responsibility_list",
    "retire",
    "review",
    "rows_within",
    "search",
    "shared_entries_holding_classified",
    "submit",
    "take_change_set",
    "text_lines",
    "update_draft",
    "upload_dataset",
    "withdraw_demand",
]
