"""The fleet page is safe to open (hosts write its text) and works in a real browser.

The pure tests read the HTML as text. The browser tests open the file from disk in Debian's
Chromium, headless: --dump-dom shows the DOM after the page's JS ran (chart drawn, filters from
the address applied), and its console log shows whether the CSP let our own style and script
run (a wrong hash blocks them) or anything threw.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from ollama_gpu_fix import fleet, fleetpage

HOSTILE = "<script>alert(1)</script>"
RESULTS = ("failed", "rolled back", "interrupted", "refused", "applied", "reboot required",
           "planned", "diagnosed", "verified", "not run")
GPUS = ("NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3", "AMD Radeon RX 6700 XT")
META = {"rollout": "r-20240501-1000", "mode": "fix", "time": "2024-05-01 10:00 UTC"}


def report(i: int, result: str) -> dict[str, Any]:
    """A final report as reports/<host>/<time>-fix.json holds it (docs/report-schema.md)."""
    gpu = GPUS[i % len(GPUS)]
    vendor = {"gpus": [{"vendor": "AMD", "name": gpu[4:]}]} if gpu.startswith("AMD") \
        else {"nvidia_gpus": [{"name": gpu}]}
    cause = ("cuda_runtime_missing", "rocm_gfx_unsupported", "vram_too_small")[i % 3]
    return {
        "result": result, "mode": "fix", "state": "done", "primary": cause,
        "started_at": "2024-05-01T10:00:00+00:00", "ended_at": f"2024-05-01T10:0{i % 10}:1{i % 6}+00:00",
        "diagnosis_before": {"summary": vendor, "findings": [
            {"code": cause, "summary": f"{cause} on node {i}",
             "evidence": [f"ollama[812]: msg=\"no compatible GPUs were discovered\" node={i}"]}]},
        "snapshot": {"observation": {"tokens_per_s": 4.0 + i}} if i % 3 else {},
        "verification": ({"tokens_per_s": 40.0 + 5 * i, "reason": "GPU did the work"}
                         if i % 4 else {"reason": "no reply from ollama"}),
        "plan": {"steps": [{"action": "service_env", "summary": "set OLLAMA_LLM_LIBRARY"}],
                 "advice": ["update the driver at the next window"]},
        "steps_applied": [{"operation": "write drop-in", "changed": True}],
        "rollout": {"wave": i // 5}, "reason": "",
        "_file": f"reports/gpu-{i:02d}/20240501T100000-fix.json",
    }


def hostile_report() -> dict[str, Any]:
    """What a hostile host can put in a report: markup, a script end, a URL to fetch."""
    data = report(7, "failed")
    data["diagnosis_before"]["findings"][0]["evidence"] = [
        "</script><script>alert(2)</script>", "<img src=https://example.invalid/x.png>"]
    data["reason"] = "</SCRIPT><script>alert(3)</script>"
    data["verification"]["reason"] = "<b onmouseover=alert(4)>x</b>"
    return data


def fleet_reports() -> dict[str, dict[str, Any] | None]:
    """20 hosts: every result twice ("not run": never touched), some with tok/s, one hostile."""
    out: dict[str, dict[str, Any] | None] = {}
    for i in range(19):
        result = RESULTS[i % len(RESULTS)]
        out[f"gpu-{i:02d}.lab.example"] = None if result == "not run" else report(i, result)
    out[HOSTILE] = hostile_report()
    return out


def charted(row: dict[str, Any]) -> bool:
    return row["tokens_before"] is not None or row["tokens_after"] is not None


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of each <script> and <style>."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.bodies: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open:
            self.bodies.append((*self._open, data))
            self._open = None

    def rows(self) -> dict[str, dict[str, str | None]]:
        return {a["data-host"]: a for t, a in self.tags if t == "tr" and "data-host" in a}

    def json_data(self) -> Any:  # noqa: ANN401 - JSON
        (body,) = [b for t, a, b in self.bodies if a.get("type") == "application/json"]
        return json.loads(body)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return fleet.rows(fleet_reports())


@pytest.fixture(scope="module")
def html(rows: list[dict[str, Any]]) -> str:
    return fleetpage.render(rows, "Rollout r-20240501-1000", META)


def test_host_text_is_escaped(html: str) -> None:
    """A host's name, evidence and reasons are text on the page, never markup or script."""
    assert "<script>alert" not in html.lower() and "<b onmouseover" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the page's own two scripts are the only things that close a script element
    assert len(re.findall(r"</script", html, re.I)) == 2
    json_block = re.search(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S)
    assert json_block and not set("<>&") & set(json_block.group(1))
    page = Page(html)
    assert HOSTILE in page.rows() and HOSTILE in {p["host"] for p in page.json_data()}


def test_nothing_is_fetched(html: str) -> None:
    """Self-contained: no attribute that loads or links anything, no CSS url(), and a CSP that
    allows no load and runs only the page's own style and script (hashes of their text)."""
    page = Page(html)
    loads = {"src", "href", "srcset", "action", "formaction", "poster", "data", "xlink:href",
             "background", "manifest", "ping"}
    assert [(t, a) for t, a in page.tags if loads & set(a)] == []
    assert not re.search(r"url\(|@import", html, re.I)
    assert "https://example.invalid" in html  # the hostile evidence: text, not an <img>
    (csp,) = [a["content"] for t, a in page.tags
              if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp.startswith("default-src 'none';") and "unsafe" not in csp
    for tag, attrs, body in page.bodies:
        if attrs.get("type") == "application/json":
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp, tag


def test_every_host_has_a_row_and_its_details(html: str, rows: list[dict[str, Any]]) -> None:
    page = Page(html)
    assert {h: a["data-result"] for h, a in page.rows().items()} == \
        {r["host"]: r["result"] for r in rows}
    details = [a for t, a in page.tags if t == "tr" and "data-detail-for" in a]
    assert [a["data-detail-for"] for a in details] == [r["host"] for r in rows]
    assert all("hidden" in a for a in details)
    assert 'ollama[812]: msg="no compatible GPUs were discovered"' in unescape(html)
    assert {p["host"] for p in page.json_data()} == \
        {r["host"] for r in rows if charted(r)}


def test_write_is_atomic_and_private(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)  # a directory of the user's own, as the report_dir must be
    path = tmp_path / "pages" / "fleet.html"
    fleetpage.write(path, "old")
    fleetpage.write(path, "<p>new</p>")
    assert path.read_text() == "<p>new</p>"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["fleet.html"]


# --- in a browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        why = "no chromium (scripts/test installs Debian's package as root)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}; CI is set")
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def page_file(html: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fleetpage")
    os.chmod(folder, 0o700)
    path = folder / "pages" / "fleet.html"
    fleetpage.write(path, html)
    return path


def browse(chromium: str, tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Chromium on URL, headless, its own profile; console messages go to stderr."""
    profile = tmp / f"profile-{time.monotonic_ns()}"
    done = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", *args, url],
        capture_output=True, text=True, timeout=120, cwd=tmp)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # a CSP block or an exception in the page's JS
    return done


def test_screenshot(chromium: str, page_file: Path) -> None:
    png = page_file.parent / "fleet.png"
    browse(chromium, page_file.parent, page_file.as_uri(), f"--screenshot={png}",
           "--window-size=1400,2000")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (1400, 2000)
    assert len(data) > 10_000  # a blank page of this size compresses to a few kB


def test_dom_after_js(chromium: str, page_file: Path, rows: list[dict[str, Any]]) -> None:
    """Every host has a shown row; the JS drew a bar group per host with numbers (the hostile
    name among them, as text) and counted the shown hosts."""
    dom = browse(chromium, page_file.parent, page_file.as_uri(), "--dump-dom").stdout
    page = Page(dom)
    assert ("html", {"lang": "en", "data-ready": "1"}) in page.tags
    shown = page.rows()
    assert set(shown) == {r["host"] for r in rows}
    assert not [h for h, a in shown.items() if "hidden" in a]
    bars = [a["data-chart-host"] for t, a in page.tags if t == "g" and "data-chart-host" in a]
    assert bars == [r["host"] for r in rows if charted(r)]
    assert HOSTILE in bars and "<script>alert" not in dom
    assert f"showing {len(rows)} of {len(rows)} hosts" in dom


@pytest.mark.parametrize(("fragment", "wanted"), [
    ("result=failed", lambda r: r["result"] == "failed"),
    ("result=rolled+back", lambda r: r["result"] == "rolled back"),
    ("q=radeon", lambda r: "Radeon" in r["gpu"]),
    ("q=radeon&result=rolled+back",
     lambda r: "Radeon" in r["gpu"] and r["result"] == "rolled back"),
])
def test_filter_from_address(chromium: str, page_file: Path, rows: list[dict[str, Any]],
                             fragment: str, wanted: Any) -> None:  # noqa: ANN401
    """A link with #result=...&q=... opens the page filtered: other rows carry `hidden`, and
    the chart shows only the hosts left."""
    dom = browse(chromium, page_file.parent, f"{page_file.as_uri()}#{fragment}",
                 "--dump-dom").stdout
    page = Page(dom)
    expect = {r["host"] for r in rows if wanted(r)}
    assert expect
    assert {h for h, a in page.rows().items() if "hidden" not in a} == expect
    bars = {a["data-chart-host"] for t, a in page.tags if t == "g" and "data-chart-host" in a}
    assert bars == {r["host"] for r in rows
                    if r["host"] in expect and charted(r)}
    assert f"showing {len(expect)} of {len(rows)} hosts" in dom
