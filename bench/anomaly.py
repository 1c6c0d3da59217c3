"""Anomaly-detection benchmark on the Numenta Anomaly Benchmark (NAB). Not a test: it prints figures.

    .venv/bin/python bench/anomaly.py --data DIR --out DIR [--nab ../shared/nab]
                                      [--nab-python PYTHON] [--checkpoint 1000]

Replays every CSV under --data (NAB's layout: ``category/file.csv`` with ``timestamp,value``)
through the production detector, `anomaly.detectors.StreamDetector`, as live readings go through
it: one reading at a time, in timestamp order, each scored from the past only, and the stream's
state serialised and restored every --checkpoint readings (a worker handing the stream to
another); each file is replayed a second time without checkpoints to check that the scores are
identical. Writes ``--out/category/file.csv`` with
``timestamp,anomaly_score``, then scores the outputs with NAB's own scorer (``score.py`` in
--nab, run with --nab-python: an interpreter with pandas<2, numpy<2 and simplejson, see the NAB
folder's README) and prints:

  NAB scores     standard, reward_low_FP, reward_low_FN (normalised: null detector 0, perfect 100)
  scoring rate   readings scored per second of CPU time on one core (this process, single
                 threaded; the replay loop, periodic checkpoints included, CSV parsing not)
  state size     bytes of the serialised state per stream at the end of its file, max and mean

Timestamps are taken as wall-clock time (NAB's are naive local times), as the service takes a
plant's local time.
"""

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anomaly.detectors import StreamDetector  # noqa: E402

DEFAULT_NAB = Path(__file__).resolve().parents[2] / "shared" / "nab"


def replay(path: Path, checkpoint: int):
    """Score one file; returns (rows of (timestamp, score), CPU seconds of the loop, state bytes)."""
    with path.open(newline="") as handle:
        rows = [(row["timestamp"], float(row["value"])) for row in csv.DictReader(handle)]
    rows.sort(key=lambda row: row[0])  # ISO timestamps sort as text
    clock = [datetime.fromisoformat(stamp).replace(tzinfo=UTC).timestamp() for stamp, _ in rows]
    detector = StreamDetector()
    scores = []
    started = time.process_time()
    for index, ((stamp, value), seconds) in enumerate(zip(rows, clock, strict=True)):
        if index and index % checkpoint == 0:
            detector = StreamDetector.from_bytes(detector.to_bytes())
        scores.append((stamp, detector.score(seconds, value)))
    return scores, time.process_time() - started, len(detector.to_bytes())


def write_scores(path: Path, scores) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "anomaly_score"])
        for stamp, score in scores:
            if not 0.0 <= score <= 1.0 or math.isnan(score):
                raise ValueError(f"{path}: score {score} at {stamp} is outside 0..1")
            writer.writerow([stamp, f"{score:.6f}"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="NAB-layout data folder (default: the NAB folder's data/)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the detector's outputs")
    parser.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="NAB folder with score.py")
    parser.add_argument(
        "--nab-python",
        default=os.environ.get("NAB_PYTHON", sys.executable),
        help="interpreter with pandas<2, numpy<2, simplejson for NAB's scorer",
    )
    parser.add_argument("--checkpoint", type=int, default=1000, help="serialise and restore every N readings")
    args = parser.parse_args()
    data = args.data or args.nab / "data"
    files = sorted(data.glob("*/*.csv"))
    if not files:
        print(f"no category/file.csv under {data}")
        return 1
    readings = 0
    cpu_seconds = 0.0
    state_sizes = []
    differing = []
    for path in files:
        scores, loop_seconds, state_bytes = replay(path, args.checkpoint)
        if scores != replay(path, checkpoint=len(scores) + 1)[0]:
            differing.append(path.name)
        write_scores(args.out / path.relative_to(data), scores)
        readings += len(scores)
        cpu_seconds += loop_seconds
        state_sizes.append(state_bytes)
    print(f"{len(files)} files, {readings} readings, state saved and restored every {args.checkpoint} readings")
    print(f"scores identical to an uninterrupted run: {'yes' if not differing else 'NO: ' + ', '.join(differing)}")
    print(f"scoring rate, one core: {readings / cpu_seconds:,.0f} readings/s of CPU time")
    print(f"state per stream: max {max(state_sizes):,} bytes, mean {sum(state_sizes) / len(state_sizes):,.0f} bytes")
    scored = subprocess.run(
        [args.nab_python, str(args.nab / "score.py"), str(args.out), args.nab_python], capture_output=True, text=True
    )
    print(scored.stdout.strip() or scored.stderr.strip()[-2000:])
    return scored.returncode or (1 if differing else 0)


if __name__ == "__main__":
    sys.exit(main())
