"""Headless Chromium for the report tests: a page loaded from a file with the network off,
its DOM after the scripts ran, and every console message it logged."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\]? (.*)")


@dataclass
class Loaded:
    dom: str
    console: list[str]


def _offline_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with no interface) where it works (root on Linux);
    otherwise Chromium's own proxy and resolver rules send every request nowhere."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def load(page: Path, profile: Path, screenshot: Path | None = None, timeout: float = 180) -> Loaded:
    """The DOM of ``page`` after its scripts ran (``--dump-dom``), and its console messages."""
    assert CHROMIUM is not None
    args = [
        *_offline_prefix(),
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
    ]
    if screenshot is not None:
        args += ["--hide-scrollbars", "--window-size=1280,1800", f"--screenshot={screenshot}"]
    else:
        args.append("--dump-dom")
    done = subprocess.run(
        [*args, page.resolve().as_uri()], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
    return Loaded(done.stdout, console)


class PointCounter(HTMLParser):
    """Drawn scatter points (``path.point``) per plotly trace uid (``g.trace<uid>``)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []  # the trace uid each open element belongs to
        self.points: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        uid = self.stack[-1] if self.stack else None
        if tag == "g" and "trace" in classes:
            uid = next((c[len("trace") :] for c in classes if c.startswith("trace") and c != "trace"), uid)
        if tag == "path" and "point" in classes and uid is not None:
            self.points[uid] = self.points.get(uid, 0) + 1
        if tag not in ("br", "img", "meta", "input", "link"):
            self.stack.append(uid)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and tag not in ("br", "img", "meta", "input", "link"):
            self.stack.pop()


def drawn_points(dom: str) -> dict[str, int]:
    counter = PointCounter()
    counter.feed(dom)
    return counter.points
