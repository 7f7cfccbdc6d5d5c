"""Bulk rows (:data:`node.store.base.NewChild`) made from store records, for store tests.

The inverse of :func:`node.store.base.records_of`: tests state what they expect as
records and insert the row those records stand for.
"""

from __future__ import annotations

from node.store.base import (
    NewChild,
    StoredAssessment,
    StoredCareSetting,
    StoredChild,
    StoredPlacement,
    assessment_columns,
    child_columns,
)


def new_child_row(
    child: StoredChild,
    placement: StoredPlacement,
    care: StoredCareSetting | None = None,
    assessment: StoredAssessment | None = None,
) -> NewChild:
    """The bulk row of a new child's records (ValueError if a part names another child)."""
    child_id = child.child_id
    if placement.child_id != child_id or (
        (care is not None and care.child_id != child_id)
        or (assessment is not None and assessment.child_id != child_id)
    ):
        raise ValueError("every part of a new child's row must name its child")
    return (
        child_columns(child),
        (placement.academic_year, placement.education_form, placement.institution),
        None if care is None else (care.since.isoformat(), care.care_setting),
        None if assessment is None else assessment_columns(assessment),
    )
