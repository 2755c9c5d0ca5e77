"""Writes COUNT sessions for the users IDBENCH00000001.. in the gateway's own Redis format, as
redis-cli --pipe input on stdout, and their cookies ("name=value", one per line) to OUT.

    seed_sessions.py COUNT DB KEY_PREFIX COOKIE_NAME TEMPLATE_SESSION_ID OUT | redis-cli -n DB --pipe

Each session is a copy of the template session (read from Redis: the bench user's login)
with another uid, stored under sha256(id) as the gateway stores it (authn::sessions).
"""

import hashlib
import json
import secrets
import subprocess
import sys


def command(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def main() -> None:
    count, db, prefix, cookie_name, template_id, out = sys.argv[1:7]
    key = lambda sid: f"{prefix}session:{hashlib.sha256(sid.encode()).hexdigest()}"
    raw = subprocess.check_output(["redis-cli", "-n", db, "GET", key(template_id)]).strip()
    template = json.loads(raw)
    pipe = sys.stdout.buffer
    with open(out, "w") as cookies:
        for n in range(1, int(count) + 1):
            sid = secrets.token_urlsafe(32)
            session = dict(template, uid=f"IDBENCH{n:08d}")
            pipe.write(command("SET", key(sid), json.dumps(session, separators=(",", ":")), "EX", "3600"))
            cookies.write(f"{cookie_name}={sid}\n")


if __name__ == "__main__":
    main()
