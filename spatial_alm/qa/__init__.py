"""SpatialSoundQA-style questions and answers: generation from scene metadata and answer parsing."""

from spatial_alm.qa.generator import (
    QUESTION_TYPES,
    QAPair,
    QuestionType,
    classify_room,
    generate_qa,
    get_question_type,
    is_yes_no,
    make_qa,
    types_for_stage,
)
from spatial_alm.qa.parser import parse_answer
from spatial_alm.qa.templates import bin_azimuth_deg, bin_distance_m, bin_elevation_deg, canonical_label

__all__ = [
    "QUESTION_TYPES",
    "QAPair",
    "QuestionType",
    "bin_azimuth_deg",
    "bin_distance_m",
    "bin_elevation_deg",
    "canonical_label",
    "classify_room",
    "generate_qa",
    "get_question_type",
    "is_yes_no",
    "make_qa",
    "parse_answer",
    "types_for_stage",
]
