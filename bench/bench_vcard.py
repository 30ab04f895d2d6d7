"""vCard benchmark: syncd side by side with vdirsyncer, and syncd against a local
Radicale side by side with a bare PUT loop.

1. vdir -> vdir with N cards (default 50,000): the same generated cards synced by
   vdirsyncer (two ``filesystem`` storages) and by syncd (two ``vdir`` connectors, an
   export pair): first sync, no-change re-sync, re-sync after 1% of the cards changed.
   Both are timed as whole processes (start-up included) and their peak RSS taken.
2. vdir -> CardDAV with M cards (default 2,000) into a local Radicale: the PUT rate of
   a bare httpx loop (one keep-alive client) into a fresh collection, syncd's first
   sync into another fresh collection, and syncd's no-change re-sync (the run's own
   time: the sync-token says nothing changed).

    pip install -e '.[bench]'          # vdirsyncer
    python bench/bench_vcard.py                      # N = 50,000, M = 2,000
    python bench/bench_vcard.py --n 5000 --m 500
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from machine import byte_compile_project
from machine import describe as describe_machine

BIN = Path(sys.executable).parent
SYNCD = str(BIN / "syncd")
VDIRSYNCER = str(BIN / "vdirsyncer")

TARGETS = {"first_ratio": 5.0, "no_change_ratio": 0.2, "put_share": 0.85, "dav_no_change": 0.3}

CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:First{i} Last{i}\r\n"
    "N:Last{i};First{i};;;\r\nEMAIL;TYPE=INTERNET:person{i}@example.com\r\n"
    "TEL;TYPE=work:+1 555 {i:07d}\r\nORG:Company {c}\r\nTITLE:{title}\r\n"
    "NOTE:Generated for the benchmark\r\nEND:VCARD\r\n"
)

VDIRSYNCER_CONFIG = """
[general]
status_path = "{status}"

[pair cards]
a = "cards_a"
b = "cards_b"
collections = null
conflict_resolution = "a wins"

[storage cards_a]
type = "filesystem"
path = "{a}"
fileext = ".vcf"

[storage cards_b]
type = "filesystem"
path = "{b}"
fileext = ".vcf"
"""

SYNCD_CONFIG = """
[daemon]
state = "sqlite:///state.db"
log_format = "json"

[connectors.a]
type = "vdir"
path = "a"

[connectors.b]
type = "vdir"
path = "b_syncd"

[connectors.dav]
type = "carddav"
url = "{dav}"
username = "bench"
password = "x"

[pairs.cards]
left = "a"
right = "b"
mode = "export"
  [pairs.cards.match]
  contact = ["email"]

[pairs.to-dav]
left = "a_small"
right = "dav"
mode = "export"
  [pairs.to-dav.match]
  contact = ["email"]

[connectors.a_small]
type = "vdir"
path = "a_small"
"""


def card(i: int, title: str = "Engineer") -> str:
    """The vCard of generated person ``i``."""
    return CARD.format(uid=f"card-{i:07d}", i=i, c=i % 1000, title=title)


def write_cards(folder: Path, count: int) -> None:
    """``count`` cards, one file each, named after their UID."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"card-{i:07d}.vcf").write_text(card(i), encoding="utf-8", newline="")


def change_one_percent(folder: Path, count: int) -> int:
    """Change the title of every hundredth card."""
    changed = 0
    for i in range(0, count, 100):
        path = folder / f"card-{i:07d}.vcf"
        path.write_text(card(i, "Changed"), encoding="utf-8", newline="")
        changed += 1
    return changed


def run_rss(argv: list[str], cwd: Path, stdin: str | None = None) -> tuple[float, float, str]:
    """Run a process to its end: (wall seconds, its peak RSS in MB from wait4, stdout).
    The benchmark's own writes are flushed first so the measured run does not pay them."""
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=out, stderr=err)
        assert proc.stdin is not None
        if stdin:
            proc.stdin.write(stdin.encode())
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({code}):\n{stderr[-2000:]}{stdout[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def file_floor(source: Path, target: Path, batch: int = 500) -> float:
    """Cards/s of a bare loop doing the file work of a first vdir -> vdir sync and
    nothing else: read every card, write it to a temporary file, make each batch
    durable at once (``os.sync``) and rename it into place, as syncd's vdir connector
    does. No tool that keeps its writes atomic and durable can copy faster."""
    target.mkdir()
    names = sorted(os.listdir(source))
    started = time.perf_counter()
    for start in range(0, len(names), batch):
        temps = []
        for name in names[start : start + batch]:
            with open(source / name, "rb") as handle:
                data = handle.read()
            tmp = target / f".{name}.tmp"
            with open(tmp, "xb") as handle:
                handle.write(data)
            temps.append((tmp, target / name))
        os.sync()
        for tmp, final in temps:
            os.replace(tmp, final)
        fd = os.open(target, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return len(names) / (time.perf_counter() - started)


def vdir_phase(root: Path, n: int) -> dict[str, dict[str, float]]:
    """vdir -> vdir with both tools; figures per tool and phase."""
    a, b_vs = root / "a", root / "b_vdirsyncer"
    b_vs.mkdir()
    (root / "b_syncd").mkdir()
    write_cards(a, n)
    config = root / "vdirsyncer.conf"
    config.write_text(
        VDIRSYNCER_CONFIG.format(status=root / "status", a=a, b=b_vs), encoding="utf-8"
    )
    vs = [VDIRSYNCER, "-c", str(config)]
    run_rss([*vs, "discover"], root, stdin="y\n" * 5)
    sd = [SYNCD, "--config", str(root / "syncd.toml")]
    figures: dict[str, dict[str, float]] = {"vdirsyncer": {}, "syncd": {}}

    def both(phase: str) -> None:
        seconds, rss, _ = run_rss([*vs, "sync"], root)
        figures["vdirsyncer"][phase], figures["vdirsyncer"][phase + "_rss"] = seconds, rss
        seconds, rss, out = run_rss([*sd, "sync", "cards", "--json"], root)
        report = json.loads(out)
        if report["status"] != "ok":
            raise SystemExit(f"syncd {phase}: {report}")
        figures["syncd"][phase], figures["syncd"][phase + "_rss"] = seconds, rss
        figures["syncd"][phase + "_run"] = report["seconds"]

    both("first")
    figures["floor"] = {"rate": file_floor(a, root / "b_floor")}
    for folder in (b_vs, root / "b_syncd"):
        count = sum(1 for _ in folder.glob("*.vcf"))
        if count != n:
            raise SystemExit(f"{folder.name} holds {count} cards after the first sync, not {n}")
    both("no_change")
    changed = change_one_percent(a, n)
    both("one_percent")
    for folder in (b_vs, root / "b_syncd"):
        arrived = sum("TITLE:Changed" in p.read_text() for p in folder.glob("*.vcf"))
        if arrived != changed:
            raise SystemExit(f"{folder.name}: {arrived} of {changed} changed cards arrived")
    return figures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_radicale(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Radicale on a free port with its storage under ``root``."""
    port = _free_port()
    argv = [
        sys.executable, "-m", "radicale",
        "--server-hosts", f"127.0.0.1:{port}",
        "--storage-filesystem-folder", str(root / "radicale"),
        "--auth-type", "none",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("Radicale did not start")


def make_book(base: str, name: str) -> str:
    """A new address book of user ``bench``; its URL."""
    auth = ("bench", "x")
    httpx.request("MKCOL", f"{base}/bench/", auth=auth)
    body = (
        '<?xml version="1.0"?><D:mkcol xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype>'
        "<D:collection/><C:addressbook/></D:resourcetype></D:prop></D:set></D:mkcol>"
    )
    made = httpx.request("MKCOL", f"{base}/bench/{name}/", auth=auth, content=body)
    if made.status_code != 201:
        raise SystemExit(f"cannot create address book {name}: {made.status_code}")
    return f"{base}/bench/{name}/"


def dav_phase(root: Path, m: int) -> dict[str, float]:
    """Bare PUT loop vs syncd into fresh collections of one Radicale."""
    proc, base = start_radicale(root)
    try:
        raw_book = make_book(base, "raw")
        syncd_book = make_book(base, "syncd")
        write_cards(root / "a_small", m)
        with httpx.Client(auth=("bench", "x")) as client:
            started = time.perf_counter()
            for i in range(m):
                response = client.put(
                    f"{raw_book}card-{i:07d}.vcf",
                    content=card(i),
                    headers={"If-None-Match": "*", "Content-Type": "text/vcard"},
                )
                response.raise_for_status()
            raw = m / (time.perf_counter() - started)
        text = (root / "syncd.toml").read_text(encoding="utf-8")
        (root / "syncd.toml").write_text(text.replace("{dav}", syncd_book), encoding="utf-8")
        sd = [SYNCD, "--config", str(root / "syncd.toml")]
        _, _, out = run_rss([*sd, "sync", "to-dav", "--json"], root)
        first = json.loads(out)
        if first["status"] != "ok" or first["counts"]["created"] != m:
            raise SystemExit(f"syncd first sync to CardDAV: {first}")
        _, _, out = run_rss([*sd, "sync", "to-dav", "--json"], root)
        again = json.loads(out)
        return {"raw": raw, "syncd": m / first["seconds"], "no_change": again["seconds"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def report(label: str, figure: str, ok: bool, target: str) -> None:
    print(f"  {label}: {figure} (target {target}: {'ok' if ok else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="cards for vdir -> vdir")
    parser.add_argument("--m", type=int, default=2_000, help="cards for vdir -> CardDAV")
    args = parser.parse_args()
    if not Path(VDIRSYNCER).exists():
        raise SystemExit("vdirsyncer is not installed: pip install -e '.[bench]'")
    with tempfile.TemporaryDirectory(prefix="syncd-bench-vcard-") as tmp:
        root = Path(tmp)
        (root / "syncd.toml").write_text(SYNCD_CONFIG, encoding="utf-8")
        n = args.n
        byte_compile_project()
        print(describe_machine())
        print(f"vdir -> vdir, N = {n:,} cards (whole processes, start-up included)")
        f = vdir_phase(root, n)
        vs, sd = f["vdirsyncer"], f["syncd"]
        print(f"  vdirsyncer first sync: {vs['first']:.2f}s = {n / vs['first']:,.0f} cards/s")
        print(f"  syncd first sync: {sd['first']:.2f}s = {n / sd['first']:,.0f} cards/s")
        ratio = vs["first"] / sd["first"]
        report("first sync, syncd vs vdirsyncer", f"{ratio:.2f}x as fast", ratio >= 5, ">= 5x")
        floor = f["floor"]["rate"]
        print(
            f"  bare file floor (read, write, batch sync, rename; no start-up): {floor:,.0f} "
            f"cards/s; syncd's first sync (its own run time) reaches "
            f"{n / sd['first_run'] / floor:.0%} of it, vdirsyncer {n / vs['first'] / floor:.0%}"
        )
        share = sd["no_change"] / vs["no_change"]
        report(
            "no-change re-sync",
            f"syncd {sd['no_change']:.2f}s vs vdirsyncer {vs['no_change']:.2f}s = {share:.2f}",
            share <= TARGETS["no_change_ratio"],
            "<= 0.2",
        )
        print(
            f"  1% changed: syncd {sd['one_percent']:.2f}s vs vdirsyncer "
            f"{vs['one_percent']:.2f}s = {sd['one_percent'] / vs['one_percent']:.2f}"
        )
        peak_vs = max(vs[k] for k in vs if k.endswith("_rss"))
        peak_sd = max(sd[k] for k in sd if k.endswith("_rss"))
        report(
            "peak RSS",
            f"syncd {peak_sd:.0f} MB vs vdirsyncer {peak_vs:.0f} MB",
            peak_sd <= peak_vs,
            "no higher",
        )
        m = args.m
        print(f"vdir -> CardDAV (local Radicale), M = {m:,} cards")
        d = dav_phase(root, m)
        print(f"  bare httpx PUT loop: {d['raw']:,.0f} cards/s")
        share = d["syncd"] / d["raw"]
        report(
            "syncd first sync",
            f"{d['syncd']:,.0f} cards/s = {share:.0%} of the bare loop",
            share >= TARGETS["put_share"],
            ">= 85%",
        )
        report(
            "no-change re-sync (run time)",
            f"{d['no_change']:.3f}s",
            d["no_change"] < TARGETS["dav_no_change"],
            "< 0.3s",
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
