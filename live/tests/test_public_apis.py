"""The live bus relies on public APIs of asyncio, asgiref and Channels only."""

from pathlib import Path

from django.conf import settings


def test_no_module_uses_asgiref_internals():
    """The bus hands work to event loops through public asyncio/Channels APIs only: asgiref's
    thread-local of its sync_to_async workers is private and changes between releases."""
    forbidden = ("thread" + "local", "main_event" + "_loop")
    root = Path(settings.BASE_DIR)
    skipped = {".venv", "node_modules", ".git"}
    offenders = [
        f"{path.relative_to(root)}: {word}"
        for path in root.rglob("*.py")
        if not skipped.intersection(path.relative_to(root).parts)
        for word in forbidden
        if word in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert offenders == []
