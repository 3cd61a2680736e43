"""The CF checker as users run it: compliance-checker's command line, one file at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def cf_result(
    path: Path, report: Path
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """compliance-checker's CF-1.8 result for ``path`` (its ``json_new`` report, written to
    ``report``: ``high_priorities``, ``medium_priorities``, scores) and the finished command."""
    exe = Path(sys.executable).with_name("compliance-checker")
    done = subprocess.run(
        [str(exe), "--test=cf:1.8", "-f", "json_new", "-o", str(report), str(path)],
        capture_output=True, text=True, timeout=300,
    )
    return json.loads(report.read_text())[str(path)]["cf:1.8"], done


def high_failures(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The high-priority checks of a :func:`cf_result` that did not pass."""
    return [h for h in result["high_priorities"] if h["value"][0] < h["value"][1]]
