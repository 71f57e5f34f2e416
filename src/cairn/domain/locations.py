"""The locations (regions) Cairn answers for, and their resource names.

Cairn is one installation, so every region is the same machine: a region is a name clients
and resources carry (`trainingInput.region`, `Model.regions`, a study's parent). The list is
the one gcloud offers for AI Platform's regional endpoints, so names that work against
Google work here. Batch prediction is not built yet, so no location claims it.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.errors import ApiError, Code, invalid_field, shown

DEFAULT_REGION = "us-central1"
REGIONS = (
    "asia-east1",
    "asia-northeast1",
    "asia-southeast1",
    "australia-southeast1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "northamerica-northeast1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-west1",
)
CAPABILITIES = ("TRAINING", "ONLINE_PREDICTION")


def check_location(location: str, project: str) -> str:
    """`location` if Cairn serves it, else NOT_FOUND (as Google answers an unknown region)."""
    if location not in REGIONS:
        if len(location) > 64:
            raise invalid_field("name", f"{shown(location)} is not a location id.")
        raise ApiError(
            Code.NOT_FOUND,
            f"Location projects/{project}/locations/{location} does not exist; Cairn serves "
            f"{', '.join(REGIONS)}.",
        )
    return location


def location_doc(project: str, location: str) -> dict[str, Any]:
    """A Location as the API renders it (the discovery document's `name` and `capabilities`)."""
    return {
        "name": f"projects/{project}/locations/{location}",
        "capabilities": [{"type": capability} for capability in CAPABILITIES],
    }
