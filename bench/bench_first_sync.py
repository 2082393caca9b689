"""First sync of a mailbox of annex-3 reports from loopback dovecot through the whole pipeline, side by side in
one run with a naive pipeline on the same server and messages. Target: mailbot ≥ 5× the naive messages/s.

mailbot: `App(config).poller().poll()` on a fresh SQLite database — fetch, archive (flushed to disk), ledger,
split, classify, attribute, read the table, store the submission; the analysing stages in worker processes
(`--workers`, default one per core) while the main process fetches and stores. Naive: imap-tools fetch,
`pandas.read_excel` with openpyxl per attachment, sum the amount column, one INSERT and one COMMIT per message
(SQLAlchemy defaults).

    .venv/bin/python bench/bench_first_sync.py [--messages 2000] [--spread] [--workers N]

By default every message comes from one unit in one period, as the issue describes; mailbot then keeps a single
history of N submissions. `--spread` cycles the messages over the six registered units, three days apart and in
mailbox order (a later UID was received later, as in a real mailbox), so that each (unit, period) holds about ten
submissions.
"""

# Each of mailbot's worker processes (forked by multiprocessing's fork server) imports the parent's main script
# first. This script therefore imports nothing at module level: pandas, SQLAlchemy and the test servers load in
# the parent only. That is what a deployment does too: its main script, the `mailbot` entry point, imports the
# CLI alone.
if __name__ == "__main__":
    from first_sync import main

    main()
