#!/usr/bin/env python3
"""A tiny SMTP server for tests: accepts every message and stores it.

    smtp_sink.py --port PORT --dir DIR [--reject-rcpt SUBSTRING] [--hang]

Listens on 127.0.0.1:PORT, speaks just enough SMTP (RFC 5321) for libcurl:
EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. Each message is written to
DIR/<n>.eml (dot-unstuffed, as received) with an atomic rename, and its
envelope recipients to DIR/<n>.rcpt. Prints "ready" on stdout once it
listens. Recipients containing SUBSTRING are refused with 550 (to test
permanent failures). With --hang it accepts connections and never answers
(a server that is up but stuck). Test use only: no TLS, no AUTH, no size
limits.
"""
import argparse
import asyncio
import itertools
import os
import signal
import sys

counter = itertools.count(1)


async def hang(reader, writer):
    await reader.read()  # until the client gives up and closes
    writer.close()


async def session(reader, writer, out_dir, reject):
    def send(line):
        writer.write((line + "\r\n").encode())

    send("220 smtp-sink ready")
    await writer.drain()
    rcpts = []
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                send("250-smtp-sink")
                send("250-8BITMIME")
                send("250 SMTPUTF8")
            elif verb == "HELO":
                send("250 smtp-sink")
            elif verb == "MAIL":
                rcpts = []
                send("250 OK")
            elif verb == "RCPT":
                if reject and reject in line:
                    send("550 5.1.1 mailbox unavailable")
                else:
                    rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                    send("250 OK")
            elif verb == "DATA":
                if not rcpts:
                    send("503 5.5.1 no valid recipients")
                    await writer.drain()
                    continue
                send("354 end with <CRLF>.<CRLF>")
                await writer.drain()
                lines = []
                while True:
                    data = await reader.readline()
                    if not data:
                        return
                    if data in (b".\r\n", b".\n"):
                        break
                    if data.startswith(b".."):
                        data = data[1:]  # dot-unstuffing
                    lines.append(data)
                n = next(counter)
                base = os.path.join(out_dir, "%d" % n)
                with open(base + ".rcpt", "w") as f:
                    f.write("\n".join(rcpts) + "\n")
                with open(base + ".tmp", "wb") as f:
                    f.write(b"".join(lines))
                os.rename(base + ".tmp", base + ".eml")
                send("250 OK queued as %d" % n)
            elif verb == "RSET":
                rcpts = []
                send("250 OK")
            elif verb == "NOOP":
                send("250 OK")
            elif verb == "QUIT":
                send("221 bye")
                await writer.drain()
                return
            else:
                send("502 5.5.2 command not implemented")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--reject-rcpt", default="")
    ap.add_argument("--hang", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.hang:
        handler = hang
    else:
        handler = lambda r, w: session(r, w, args.dir, args.reject_rcpt)
    server = await asyncio.start_server(handler, "127.0.0.1", args.port)
    # SIGTERM is how tests stop it: a clean exit (status 0), not a kill.
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    print("ready", flush=True)
    async with server:
        await stop


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
