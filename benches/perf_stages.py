#!/usr/bin/env python3
"""Sums a `perf record --call-graph dwarf` profile of casegate by pipeline stage.

Usage: perf_stages.py PERF.DATA   (made by `CASEGATE_BENCH_PROFILE=PERF.DATA cargo bench --bench
ingest_mixed`). Each CPU sample goes to one stage: the acknowledgment of a new report if any
frame is in it, else the stage of the innermost frame that belongs to one (SQLite, sequoia and
nettle, mail-parser, ...). Also prints the share spent re-preparing SQL statements. Off-CPU time
(fsync waits) is not in a CPU profile: count it with `strace -f -c -e fsync`.
"""
import collections, re, subprocess, sys

ACK = re.compile(r"^(casegate::outbox::ack::|casegate::pipeline::PipelineRef::acknowledge)")
STAGES = [
    ("store: SQLite queries, inserts, WAL writes", re.compile(r"^(sqlite3|rusqlite::|casegate::store::|pager|wal|btree|pcache|unixSync|vdbe)", re.I)),
    ("open: OpenPGP (sequoia, nettle)", re.compile(r"^(sequoia_openpgp::|buffered_reader::|_?nettle|__gmpn|casegate::open::crypto::)")),
    ("parse: MIME (mail-parser)", re.compile(r"^(mail_parser::|casegate::message::)")),
    ("open: MIME walk, armor", re.compile(r"^casegate::open::")),
    ("route: decision, verdict, tracking numbers", re.compile(r"^(casegate::route::|casegate::verdict::|casegate::tracking::|regex)")),
    ("intake: reading the Maildir", re.compile(r"^(casegate::intake::|casegate::app::for_each_message)")),
    ("pipeline glue", re.compile(r"^casegate::pipeline::")),
    ("start-up, CLI, keys", re.compile(r"^(casegate::|clap)")),
]
PREPARE = re.compile(r"^(sqlite3LockAndPrepare|sqlite3Prepare|sqlite3Reprepare)")


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "tid,ip,sym"],
                         capture_output=True, text=True, errors="replace", check=True).stdout
    cur = []
    for line in out.splitlines():
        if not line.strip():
            if cur:
                yield [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "" for l in cur[1:]]
            cur = []
        else:
            cur.append(line.strip())
    if cur:
        yield [l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "" for l in cur[1:]]


def main():
    stages, prepare, n = collections.Counter(), 0, 0
    for frames in samples(sys.argv[1]):
        n += 1
        prepare += any(PREPARE.match(f) for f in frames)
        if any(ACK.match(f) for f in frames):
            stages["acknowledgments of new reports: compose, seal, queue"] += 1
            continue
        for f in frames:
            hit = next((name for name, rx in STAGES if rx.match(f)), None)
            if hit:
                stages[hit] += 1
                break
        else:
            stages["other (kernel, libc, no casegate frame)"] += 1
    for name, count in stages.most_common():
        print(f"{100 * count / n:5.1f}%  {name}")
    print(f"{100 * prepare / n:5.1f}%  of all samples: SQLite preparing statements (any stage)")
    print(f"{n} samples")


if __name__ == "__main__":
    sys.exit(main())
