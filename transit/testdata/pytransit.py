# Drives wormhole.transit (Debian's magic-wormhole 0.12) for the Go interop
# tests. Protocol over stdin/stdout, one JSON object per line:
#   argv[1]: {"role": "sender"|"receiver", "key": hex, "relay": "tcp:..."|null,
#             "no_listen": bool, "payload": int}
#   out: {"hints": [...]}            our connection hints
#   in:  {"hints": [...]}            the peer's hints
#   out: {"connected": description}
#   then: the Python side sends record "hello from python", then `payload`
#   bytes of deterministic data in 16 KiB records, then waits for one record
#   from Go and prints {"got": text, "sha256": hex of all received}; the Go
#   side sends "hello from go", then its own payload, then a final record.
import sys, json, hashlib
from binascii import unhexlify
from twisted.internet import reactor, defer, threads
from twisted.internet.task import react
from wormhole import transit
from wormhole import ipaddrs

# Advertise loopback only (the tests never leave the machine).
ipaddrs.find_addresses = lambda: ["127.0.0.1"]
transit.ipaddrs.find_addresses = ipaddrs.find_addresses


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def payload(n):
    h = hashlib.sha256(b"seed")
    buf = bytearray()
    while len(buf) < n:
        buf += h.digest()
        h = hashlib.sha256(h.digest())
    return bytes(buf[:n])


@defer.inlineCallbacks
def main(reactor, cfg):
    cls = transit.TransitSender if cfg["role"] == "sender" else transit.TransitReceiver
    t = cls(cfg.get("relay"), no_listen=cfg.get("no_listen", False), reactor=reactor)
    t.RELAY_DELAY = float(cfg.get("relay_delay", 2.0))
    t.set_transit_key(unhexlify(cfg["key"]))
    hints = yield t.get_connection_hints()
    out({"hints": hints})
    line = yield threads.deferToThread(sys.stdin.readline)
    t.add_connection_hints(json.loads(line)["hints"])
    c = yield t.connect()
    out({"connected": c.describe()})
    c.send_record(b"hello from python")
    data = payload(cfg["payload"])
    for i in range(0, len(data), 16384):
        c.send_record(data[i:i + 16384])
    first = yield c.receive_record()
    h = hashlib.sha256()
    got = 0
    while got < cfg["payload"]:
        r = yield c.receive_record()
        h.update(r)
        got += len(r)
    last = yield c.receive_record()
    out({"got": first.decode(), "sha256": h.hexdigest(), "last": last.decode()})
    c.close()


if __name__ == "__main__":
    react(main, [json.loads(sys.argv[1])])
