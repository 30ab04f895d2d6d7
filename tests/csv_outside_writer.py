"""Another program writing a CSV file that syncd writes too, as a cooperating writer
does: it holds the file's lock (``.NAME.lock``, see ``syncd_csv.guard``) while it
appends rows or rewrites the file.

    python csv_outside_writer.py FILE STOP_FILE SECONDS MAX_STEPS SEED

Until STOP_FILE exists (or SECONDS or MAX_STEPS run out) it appends new rows with ids
``x<n>`` (each in two writes, so a writer that ignored the lock could glue rows) and
rewrites the whole file to rename one of its own rows, as a spreadsheet does. At the
end it prints, as JSON, what its rows must hold: id -> [e-mail, first name].
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import random
import sys
import time
from pathlib import Path


def main() -> None:
    path, stop = Path(sys.argv[1]), Path(sys.argv[2])
    seconds, steps, seed = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    rng = random.Random(seed)
    lock = path.with_name(f".{path.name}.lock")
    rows: dict[str, list[str]] = {}
    deadline = time.monotonic() + seconds
    for step in range(steps):
        if stop.exists() or time.monotonic() > deadline:
            break
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if rows and rng.random() < 0.15:
                rid = rng.choice(sorted(rows))
                rows[rid][1] = f"Edited{step}"
                rewrite(path, rid, rows[rid])
            else:
                rid = f"x{step}"
                rows[rid] = [f"{rid}@outside.org", f"Outside{step}"]
                line = f"{rid},{rows[rid][0]},{rows[rid][1]}\r\n".encode()
                with open(path, "ab") as handle:
                    handle.write(line[:5])
                    handle.flush()
                    time.sleep(0.0005)
                    handle.write(line[5:])
        finally:
            os.close(fd)  # releases the lock
        time.sleep(rng.uniform(0, 0.003))
    print(json.dumps(rows))


def rewrite(path: Path, rid: str, cells: list[str]) -> None:
    """Replace the file with a copy in which row ``rid`` holds ``cells``."""
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    for row in table:
        if row and row[0] == rid:
            row[1:3] = cells
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(table)
    temp = path.with_name(f".{path.name}.outside")
    temp.write_text(out.getvalue(), encoding="utf-8", newline="")
    os.replace(temp, path)


if __name__ == "__main__":
    main()
