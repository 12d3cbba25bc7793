"""Light constants that the parsers need (choices, defaults), so that building the CLI and ``--help``
import no torch, torchaudio or transformers. ``tests/test_cli_errors.py`` checks each against its registry."""

from __future__ import annotations

from pathlib import Path

# sorted(spatial_alm.evaluation.baselines.BASELINES)
BASELINE_NAMES = ("gcc_phat_woodworth", "music", "normmusic", "srp_phat", "tops")
# spatial_alm.quickstart.STAGES, in order
QUICKSTART_STAGES = ("simulate", "encoder", "llm", "evaluate", "report")
# spatial_alm.quickstart.DEFAULT_CONFIG
DEFAULT_QUICKSTART_CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "quickstart" / "cpu_default.yaml"
