"""What DeepYN Viewer writes where and what it sends: nothing leaves the machine.

One text, shown in Help › About and stated in the README, and checked by ``tests/test_privacy.py``
(fresh HOME, every file written and every socket audited). Journalists handle sensitive material:
the tool must not phone home or leave identifiers behind.
"""

from __future__ import annotations


def privacy_statement(data_folder: str) -> list[str]:
    """The guarantee, one sentence per item, naming this machine's data folder."""
    return [
        ("Nothing leaves this computer: no telemetry, no update check, no network connection of any kind "
         "(the backends run the model on this machine or on an accelerator card in it)."),
        ("ONNX Runtime's own telemetry and its device identifier (~/.cache/Microsoft/DeveloperTools) are "
         "switched off before it loads (ORT_DISABLE_TELEMETRY=1)."),
        (f"Written: saved analyses in the data folder {data_folder} (delete it at any time); what you "
         "export, where you choose; temporary files in the system temp folder; the viewer's preferences "
         "in the usual per-user settings file."),
        "Never written: the evidence file (opened read-only) or anything beside it.",
    ]
