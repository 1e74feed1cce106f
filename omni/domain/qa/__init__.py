"""Quality assessment (issue 18): scorecards built by supervisors, evaluations of
conversations and calls (from history or live), operators' comments, and the reports
``qa`` / ``qa_calibration`` (``omni.domain.reports.qa``). docs/qa.md.
"""

from __future__ import annotations

from omni.domain.qa.evaluations import (
    check_comment,
    check_create_evaluation,
    evaluation_dict,
    get_evaluation,
    list_evaluations,
    score,
)
from omni.domain.qa.scorecards import (
    check_create_scorecard,
    check_read_scorecards,
    check_update_scorecard,
    clean_items,
    get_scorecard,
    list_scorecards,
    scorecard_dict,
    scorecard_rows,
)

__all__ = [
    "check_comment",
    "check_create_evaluation",
    "check_create_scorecard",
    "check_read_scorecards",
    "check_update_scorecard",
    "clean_items",
    "evaluation_dict",
    "get_evaluation",
    "get_scorecard",
    "list_evaluations",
    "list_scorecards",
    "score",
    "scorecard_dict",
    "scorecard_rows",
]
