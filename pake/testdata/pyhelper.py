"""Python side of pake's live interop tests (run by live_test.go with
Debian's /usr/bin/python3). One JSON request per stdin line, one JSON reply
per stdout line. Byte strings travel as hex. Everything here calls the real
installed libraries: python-spake2 (SPAKE2_Symmetric), magic-wormhole
(wormhole._key, wormhole.util) and PyNaCl."""

import json
import sys
from binascii import hexlify, unhexlify

import nacl.secret
import spake2
import wormhole
from spake2 import SPAKE2_Symmetric
from spake2.ed25519_basic import arbitrary_element
from wormhole import _key, util
from wormhole import _interfaces
from wormhole.timing import DebugTiming
from zope.interface import implementer


def h(b):
    return hexlify(b).decode("ascii")


def u(s):
    return unhexlify(s.encode("ascii"))


@implementer(_interfaces.IBoss)
class FakeBoss:
    def __init__(self):
        self.key = None
        self.is_scared = False

    def got_key(self, key):
        self.key = key

    def scared(self):
        self.is_scared = True


@implementer(_interfaces.IMailbox)
class FakeMailbox:
    def __init__(self):
        self.added = []

    def add_message(self, phase, body):
        self.added.append((phase, body))


@implementer(_interfaces.IReceive)
class FakeReceive:
    def got_key(self, key):
        pass


spakes = {}
keys = {}


def entropy_from(hexstr):
    data = u(hexstr)

    def f(n):
        assert n == len(data), (n, len(data))
        return data

    return f


def handle(req):
    op = req["op"]
    if op == "versions":
        return {"spake2": spake2.__version__, "wormhole": wormhole.__version__,
                "nacl": nacl.__version__}
    if op == "elements":
        return {s: h(arbitrary_element(s.encode()).to_bytes())
                for s in ("symmetric", "M", "N")}
    if op == "spake_start":
        kw = {}
        if req.get("entropy"):
            kw["entropy_f"] = entropy_from(req["entropy"])
        sp = SPAKE2_Symmetric(u(req["pw"]), idSymmetric=u(req["id"]), **kw)
        msg = sp.start()
        spakes[req["h"]] = sp
        return {"msg": h(msg)}
    if op == "spake_finish":
        sp = spakes.pop(req["h"])
        return {"key": h(sp.finish(u(req["msg"])))}
    if op == "to_bytes":
        return {"b": h(util.to_bytes(req["s"]))}
    if op == "derive_key":
        length = req.get("length", 32)
        return {"key": h(_key.derive_key(u(req["key"]), u(req["purpose"]), length))}
    if op == "derive_phase_key":
        return {"key": h(_key.derive_phase_key(u(req["key"]), req["side"], req["phase"]))}
    if op == "encrypt":
        return {"ct": h(_key.encrypt_data(u(req["key"]), u(req["pt"])))}
    if op == "decrypt":
        return {"pt": h(_key.decrypt_data(u(req["key"]), u(req["ct"])))}
    if op == "secretbox_nonce":
        # PyNaCl directly, with a chosen nonce.
        box = nacl.secret.SecretBox(u(req["key"]))
        return {"ct": h(bytes(box.encrypt(u(req["pt"]), u(req["nonce"]))))}
    if op == "key_start":
        # The real _key.Key state machine: got_code builds SPAKE2 and queues
        # the "pake" phase body exactly as the wormhole client does.
        boss, mbox = FakeBoss(), FakeMailbox()
        k = _key.Key(req["appid"], {"app_versions": {}}, req["side"], DebugTiming())
        k.wire(boss, mbox, FakeReceive())
        k.got_code(req["code"])
        keys[req["h"]] = (k, boss, mbox)
        (phase, body), = mbox.added
        return {"phase": phase, "body": h(body)}
    if op == "key_pake":
        # Deliver the peer's "pake" body; Key computes the key and queues
        # the encrypted "version" message.
        k, boss, mbox = keys.pop(req["h"])
        k.got_pake(u(req["body"]))
        if boss.is_scared:
            return {"scared": True}
        (phase, body) = mbox.added[1]
        return {"key": h(boss.key), "phase": phase, "body": h(body)}
    raise ValueError("unknown op " + op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except Exception as e:  # reported to the Go test
            resp = {"error": type(e).__name__, "text": str(e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
