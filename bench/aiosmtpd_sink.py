"""Fallback SMTP sink when Debian's smtp-sink cannot be installed: aiosmtpd, discarding
each message and printing `mesg=<count>` after each one (the bench reads the count)."""

import sys
import time

from aiosmtpd.controller import Controller


class Handler:
    count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        Handler.count += 1
        sys.stdout.write(f"mesg={Handler.count}\n")
        sys.stdout.flush()
        return "250 OK"


if __name__ == "__main__":
    controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()
