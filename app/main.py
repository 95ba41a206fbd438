"""`python -m app` / `tl-fif` with no arguments: the desktop app, in a window titled TL-FIF."""
from __future__ import annotations

import argparse
import logging
import signal
import sys

from app.services import config_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tl-fif", description="TL-FIF desktop app")
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    args = parser.parse_args([] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    import tkinter as tk

    from app.application import Application

    loaded = config_file.load()
    try:
        root = tk.Tk()
    except tk.TclError as err:
        print(f"tl-fif: cannot open a window ({err}); is a display available (DISPLAY)?", file=sys.stderr)
        return 2
    app = Application(root, settings=loaded.settings, load_warning=loaded.warning, production=True)

    return run_window(root, app, on_start=app.settle)


def run_window(root, app, on_start=None) -> int:
    """Start `app`, run Tk's loop until the window closes or SIGINT/SIGTERM arrives, then close the app and the
    window. `on_start` runs on the Tk thread once the app has started (the acceptance check's app uses it too)."""
    import tkinter as tk

    def quit_app(*_args) -> None:
        root.quit()

    root.protocol("WM_DELETE_WINDOW", quit_app)
    previous = {sig: signal.signal(sig, quit_app) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        app.start()
        if on_start is not None:
            on_start()
        root.mainloop()
    finally:
        app.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            root.destroy()
        except tk.TclError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
