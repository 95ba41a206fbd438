"""Where a file dialog opens: the folder last used in this session, else the user's home — never the directory
the app happened to be started from."""
from __future__ import annotations

from pathlib import Path


class LastFolder:
    def __init__(self, home: Path | None = None):
        self.path = home or Path.home()

    def remember(self, chosen: str) -> None:
        """A file was picked (or typed): its folder is where the next dialog opens."""
        if chosen:
            folder = Path(chosen).expanduser().parent
            if folder.is_dir():
                self.path = folder
