"""projects.locations: the regions Cairn serves, and the operations named under them.

Location-scoped operations (`projects/P/locations/L/operations/OP`) are what Vizier's
suggestions and early-stopping checks return. Cairn answers both within the request, so
they are stored already done; `get` reads them back and `cancel` of a done operation is
accepted and changes nothing, as on Google.
"""

from __future__ import annotations

from typing import Any

from cairn.domain.errors import ApiError, Code, invalid_field, shown
from cairn.domain.locations import REGIONS, check_location, location_doc
from cairn.domain.names import check_project
from cairn.services.operations import operation_id
from cairn.services.projects import ProjectService

# Longest operation id accepted in a path: ids Cairn makes are far shorter.
_MAX_OPERATION_ID = 256


class LocationService:
    def __init__(self, projects: ProjectService) -> None:
        self._projects = projects

    def get(self, project: str, location: str) -> dict[str, Any]:
        self._projects.ensure(project)
        return location_doc(project, check_location(location, project))

    def list(self, project: str, page_size: int | None, page_token: str | None) -> dict[str, Any]:
        """Every region, in pages when asked (the token is the next position)."""
        self._projects.ensure(project)
        if page_size is not None and page_size < 0:
            raise invalid_field("page_size", "The page size must not be negative.")
        start = 0
        if page_token:
            # isdigit() alone admits '¹' and other digits int() refuses: ASCII digits only.
            digits = page_token.isascii() and page_token.isdigit()
            if not digits or int(page_token) >= len(REGIONS):
                raise invalid_field("page_token", f"{shown(page_token)} is not a page token.")
            start = int(page_token)
        end = len(REGIONS) if not page_size else min(len(REGIONS), start + page_size)
        response: dict[str, Any] = {
            "locations": [location_doc(project, region) for region in REGIONS[start:end]]
        }
        if end < len(REGIONS):
            response["nextPageToken"] = str(end)
        return response

    def check(self, project: str, location: str) -> str:
        """A served location of a well-formed project id, or an error (reads only)."""
        check_project(project)
        return check_location(location, project)

    def ensure(self, project: str, location: str) -> str:
        """As `check`, recording the project on first use (for calls that create)."""
        self._projects.ensure(project)
        return check_location(location, project)


class LocationOperations:
    """Operations under a location, recorded once their work is done."""

    def __init__(self, repo: Any, locations: LocationService) -> None:
        self._repo = repo
        self._locations = locations

    def record_done(
        self,
        project: str,
        location: str,
        kind: tuple[str, ...],
        metadata: dict[str, Any],
        response: dict[str, Any],
    ) -> dict[str, Any]:
        """Store a finished operation and return it as the API renders it.

        `kind` makes the id, like AI Platform's: `("suggest", "s1")` -> `suggest_s1-<ms>`.
        """
        op_id = operation_id(*kind)
        doc = {
            "name": f"projects/{project}/locations/{location}/operations/{op_id}",
            "metadata": metadata,
            "done": True,
            "response": response,
        }
        self._repo.insert((project, location, op_id), doc, state="DONE")
        return doc

    def get(self, project: str, location: str, op_id: str) -> dict[str, Any]:
        self._locations.check(project, location)
        if len(op_id) > _MAX_OPERATION_ID:
            raise invalid_field("name", "The operation id is too long.")
        doc = self._repo.get((project, location, op_id))
        if doc is None:
            raise ApiError(
                Code.NOT_FOUND,
                f"Operation projects/{project}/locations/{location}/operations/{op_id} "
                "does not exist.",
            )
        return dict(doc)

    def cancel(self, project: str, location: str, op_id: str) -> dict[str, Any]:
        """Every operation here is done when it is returned: nothing is left to cancel."""
        self.get(project, location, op_id)
        return {}
