"""Python side of the wormhole-go Dilation interop check.

It imports the *upstream* magic-wormhole (and noiseprotocol) from
PYTHONPATH, which the caller sets at run time; nothing upstream is kept in
this repository. See docs/dilation-interop.md.

The script joins a wormhole with --code, dilates, and for every
subprotocol named in --open opens a subchannel (connector_for), and for
every name in --listen accepts one subchannel (listener_for). On each
subchannel it sends --size random bytes, half-closes, and reads until the
peer's CLOSE; sha256 and byte counts of both directions are reported as
JSON lines on stdout:

  {"event": "versions", "version": ...}
  {"event": "status", "generation": N, "peer": "ConnectedPeer", "role": "leader"}
  {"event": "subchannel", "name": ..., "how": "open|accept", "id": N,
   "sent": N, "sent_sha256": hex, "recv": N, "recv_sha256": hex, "seconds": f}
  {"event": "transfers-done"}
  {"event": "closed", "result": ...}

After "transfers-done" it waits for the line "close" on stdin, then closes
the wormhole (so no unacknowledged data is dropped while the Go side is
still reading) and exits 0. Any failure prints {"event": "error"} and
exits 1.
"""

import argparse
import hashlib
import json
import os
import sys
import time

from twisted.internet import defer, reactor, stdio
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IHalfCloseableProtocol, IPullProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

import wormhole
from wormhole import ipaddrs
from wormhole._dilation import connector as dil_connector
from wormhole._dilation import manager as dil_manager


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def loopback_only():
    # Keep all traffic on loopback: advertise only 127.0.0.1 (upstream keeps
    # 127.0.0.1 when it is the only address) and listen on 127.0.0.1.
    ipaddrs.find_addresses = lambda: ["127.0.0.1"]
    orig = dil_connector.serverFromString

    def sfs(r, desc):
        if desc == "tcp:0":
            desc = "tcp:0:interface=127.0.0.1"
        return orig(r, desc)
    dil_connector.serverFromString = sfs


@implementer(IPullProducer)
class Sender:
    def __init__(self, proto, data, chunk):
        self.proto = proto
        self.data = data
        self.chunk = chunk
        self.off = 0

    def resumeProducing(self):
        if self.off >= len(self.data):
            return
        end = min(self.off + self.chunk, len(self.data))
        self.proto.transport.write(self.data[self.off:end])
        self.off = end
        if self.off >= len(self.data):
            self.proto.transport.unregisterProducer()
            self.proto.transport.loseWriteConnection()

    def stopProducing(self):
        pass


@implementer(IHalfCloseableProtocol)
class Exchange(Protocol):
    def __init__(self, name, how, size, chunk, done):
        self.name = name
        self.how = how
        self.data = os.urandom(size)
        self.chunk = chunk
        self.done = done
        self.h = hashlib.sha256()
        self.n = 0
        self.read_done = False
        self.write_done = False

    def connectionMade(self):
        self.t0 = time.monotonic()
        peer = self.transport.getPeer()
        self.scid = getattr(self.transport, "_scid", None)
        emit(event="subchannel-open", name=self.name, how=self.how,
             id=self.scid, peer=str(peer))
        if len(self.data) == 0:
            self.transport.loseWriteConnection()
        else:
            self.transport.registerProducer(
                Sender(self, self.data, self.chunk), False)

    def dataReceived(self, data):
        self.h.update(data)
        self.n += len(data)

    def readConnectionLost(self):
        self.read_done = True
        self.maybe_done()

    def writeConnectionLost(self):
        self.write_done = True
        self.maybe_done()

    def connectionLost(self, why=None):
        pass

    def maybe_done(self):
        if not (self.read_done and self.write_done):
            return
        secs = time.monotonic() - self.t0
        emit(event="subchannel", name=self.name, how=self.how, id=self.scid,
             sent=len(self.data),
             sent_sha256=hashlib.sha256(self.data).hexdigest(),
             recv=self.n, recv_sha256=self.h.hexdigest(), seconds=secs)
        if not self.done.called:
            self.done.callback(None)


class OneShotFactory(Factory):
    def __init__(self, name, how, size, chunk, done):
        self.args = (name, how, size, chunk, done)
        self.used = False

    def buildProtocol(self, addr):
        if self.used:
            emit(event="error", msg="second subchannel for " + self.args[0])
        self.used = True
        return Exchange(*self.args)


class Stdin(LineReceiver):
    delimiter = b"\n"

    def __init__(self, d):
        self.d = d

    def lineReceived(self, line):
        if line.strip() == b"close" and not self.d.called:
            self.d.callback(None)

    def connectionLost(self, why=None):
        if not self.d.called:
            self.d.callback(None)


def start_state_dump(dw):
    """--debug: log the Dilation manager's connection state every second
    (what the TCP transport is doing, L4 queues, the Leader's keepalive)."""
    from twisted.internet.task import LoopingCall

    def dump():
        m = dw._manager
        c = m._connection
        tr = getattr(c, "transport", None) if c is not None else None
        traffic = getattr(m._traffic, "_state", None) if m._traffic else None
        info = dict(
            manager_state=str(getattr(m, "_state", "?")),
            connection=repr(c)[:60] if c is not None else None,
            traffic_timer=repr(traffic)[:60] if traffic else None,
            ping_timer=m._timer is not None,
            outbound_unacked=len(m._outbound._outbound_queue),
            outbound_paused=m._outbound._paused,
        )
        if tr is not None:
            from twisted.internet import reactor as r
            info.update(
                tcp_disconnecting=bool(getattr(tr, "disconnecting", None)),
                tcp_producer=repr(getattr(tr, "producer", None))[:50],
                tcp_producer_paused=getattr(tr, "producerPaused", None),
                tcp_reading=tr in r.getReaders(),
                tcp_writing=tr in r.getWriters(),
                tcp_buffered=len(getattr(tr, "dataBuffer", b"")) + getattr(tr, "_tempDataLen", 0),
            )
        sys.stderr.write("%s STATE %s\n" % (
            time.strftime("%H:%M:%S"), json.dumps(info, default=str)))
        sys.stderr.flush()
    LoopingCall(dump).start(1.0)


@defer.inlineCallbacks
def main(args):
    loopback_only()
    if args.side:
        dil_manager.make_side = lambda: args.side

    w = wormhole.create(args.appid, args.url, reactor, dilation=True)
    w.set_code(args.code)
    yield w.get_verifier()
    versions = yield w.get_versions()
    emit(event="versions", version=wormhole.__version__, peer=versions)

    holder = {}

    def on_status(st):
        m = holder.get("dw")
        role = None
        if m is not None:
            r = getattr(m._manager, "_my_role", None)
            role = None if r is None else str(r)
        pc = st.peer_connection
        emit(event="status", generation=st.generation,
             peer=type(pc).__name__,
             hint=getattr(pc, "hint_description", None), role=role)

    kw = dict(no_listen=args.no_listen, on_status_update=on_status)
    if args.relay:
        kw["transit_relay_location"] = args.relay
    if args.ping_interval:
        kw["ping_interval"] = args.ping_interval
    dw = w.dilate(**kw)
    holder["dw"] = dw
    if args.debug or args.state_dump:
        start_state_dump(dw)
    yield dw.when_dilated()
    emit(event="dilated", side=dw._manager._my_side,
         role=str(dw._manager._my_role))

    waits = []
    for name in args.listen:
        d = defer.Deferred()
        waits.append(d)
        yield dw.listener_for(name).listen(
            OneShotFactory(name, "accept", args.size, args.chunk, d))
    for name in args.open:
        d = defer.Deferred()
        waits.append(d)
        yield dw.connector_for(name).connect(
            OneShotFactory(name, "open", args.size, args.chunk, d))
    yield defer.gatherResults(waits, consumeErrors=True)
    emit(event="transfers-done")

    closing = defer.Deferred()
    stdio.StandardIO(Stdin(closing))
    yield closing
    try:
        res = yield w.close()
        emit(event="closed", result=str(res))
    except Exception as e:  # the peer may have closed first
        emit(event="closed", result="error: %r" % (e,))


def run():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--appid", default="wormhole-go/dilation-interop")
    p.add_argument("--code", required=True)
    p.add_argument("--side", default="", help="force the Dilation side (16 hex)")
    p.add_argument("--relay", default="", help="tcp:host:port transit relay")
    p.add_argument("--no-listen", action="store_true")
    p.add_argument("--ping-interval", type=float, default=0)
    p.add_argument("--size", type=int, default=64 << 20)
    p.add_argument("--chunk", type=int, default=256 << 10)
    p.add_argument("--open", action="append", default=[])
    p.add_argument("--listen", action="append", default=[])
    p.add_argument("--debug", action="store_true", help="twisted log to stderr")
    p.add_argument("--state-dump", action="store_true",
                   help="print the manager/TCP state to stderr every second")
    args = p.parse_args()
    if args.debug:
        from twisted.python import log
        log.startLogging(sys.stderr, setStdout=False)

    rc = []

    def ok(_):
        rc.append(0)
        reactor.stop()

    def bad(f):
        emit(event="error", msg=f.getErrorMessage(), tb=f.getTraceback())
        rc.append(1)
        reactor.stop()
    reactor.callWhenRunning(
        lambda: main(args).addCallbacks(ok, bad))
    reactor.run()
    sys.exit(rc[0] if rc else 1)


if __name__ == "__main__":
    run()
