"""A Python magic-wormhole library peer driven over stdin/stdout.

Run with Debian's /usr/bin/python3: pypeer.py RELAY_URL APPID
Each stdin line is a JSON command {"id": N, "cmd": ..., "w": NAME, ...};
each stdout line is a JSON reply {"id": N, ...} (or {"id": N, "error":
CLASSNAME, "msg": TEXT}). Commands run concurrently; replies may come out
of order. Several wormholes (by name "w") can live in one process.

Commands: create {versions}, allocate {length}, set_code {code},
get_code, get_unverified_key, get_verifier, get_versions, send {data},
get_message, derive_key {purpose, length}, close,
handshake {code} (two wormholes in-process: set_code, one message each
way, close both; for benchmarks), quit.
"""
import json
import sys
import time

from twisted.internet import defer, reactor, stdio
from twisted.protocols.basic import LineReceiver

import wormhole

RELAY, APPID = sys.argv[1], sys.argv[2]


class Peer(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 1 << 24

    def __init__(self):
        self.w = {}

    def reply(self, msg):
        self.transport.write(json.dumps(msg).encode("utf-8") + b"\n")

    def lineReceived(self, line):
        cmd = json.loads(line.decode("utf-8"))
        d = defer.maybeDeferred(self.run, cmd)

        def ok(res):
            out = {"id": cmd.get("id")}
            out.update(res or {})
            self.reply(out)

        def bad(f):
            self.reply({"id": cmd.get("id"), "error": type(f.value).__name__,
                        "msg": str(f.value)})

        d.addCallbacks(ok, bad)

    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()

    @defer.inlineCallbacks
    def run(self, c):
        name = c.get("cmd")
        if name == "quit":
            reactor.callLater(0, reactor.stop)
            return {}
        if name == "handshake":
            t0 = time.time()
            inner = yield self.handshake(c["code"])
            return {"seconds": time.time() - t0, "code_to_message": inner}
        if name == "create":
            self.w[c["w"]] = wormhole.create(APPID, RELAY, reactor,
                                             versions=c.get("versions", {}))
            return {}
        w = self.w[c["w"]]
        if name == "allocate":
            w.allocate_code(c.get("length", 2))
            code = yield w.get_code()
            return {"code": code}
        if name == "set_code":
            w.set_code(c["code"])
            return {}
        if name == "get_code":
            code = yield w.get_code()
            return {"code": code}
        if name == "get_unverified_key":
            k = yield w.get_unverified_key()
            return {"hex": k.hex()}
        if name == "get_verifier":
            v = yield w.get_verifier()
            return {"hex": v.hex()}
        if name == "get_versions":
            v = yield w.get_versions()
            return {"versions": v}
        if name == "send":
            w.send_message(bytes.fromhex(c["hex"]))
            return {}
        if name == "get_message":
            m = yield w.get_message()
            return {"hex": m.hex()}
        if name == "derive_key":
            k = w.derive_key(c["purpose"], c.get("length", 32))
            return {"hex": k.hex()}
        if name == "close":
            res = yield w.close()
            return {"result": res}
        raise ValueError("unknown command %r" % (name,))

    @defer.inlineCallbacks
    def handshake(self, code):
        """Two wormholes in this process exchange one message each way.
        Returns the seconds from "code known" (both connected, set_code)
        to the first message decrypted."""
        a = wormhole.create(APPID, RELAY, reactor)
        b = wormhole.create(APPID, RELAY, reactor)
        yield a.get_welcome()
        yield b.get_welcome()
        t0 = time.time()
        a.set_code(code)
        b.set_code(code)
        a.send_message(b"ping")
        m1 = yield b.get_message()
        t1 = time.time()
        b.send_message(b"pong")
        m2 = yield a.get_message()
        assert (m1, m2) == (b"ping", b"pong"), (m1, m2)
        yield a.close()
        yield b.close()
        return t1 - t0


stdio.StandardIO(Peer())
reactor.run()
