"""Python side of wordlist's live tests (run by live_test.go with Debian's
/usr/bin/python3). One JSON request per stdin line, one JSON reply per
stdout line. Calls magic-wormhole 0.12's own _wordlist, _code and
_nameplate code."""

import json
import re
import sys
import unicodedata

from wormhole import _wordlist, errors
from wormhole._code import validate_code
from wormhole._nameplate import validate_nameplate


class FixedOS:
    """Stands in for the os module inside _wordlist, so choose_words reads
    the bytes the Go test chose instead of os.urandom."""

    def __init__(self, data):
        self.data = bytearray(data)

    def urandom(self, n):
        assert n == 1
        b = bytes(self.data[:1])
        del self.data[:1]
        return b


def check(f, s):
    try:
        f(s)
        return None
    except errors.KeyFormatError as e:
        return str(e)


def handle(req):
    op = req["op"]
    if op == "table":
        return {"words": _wordlist.raw_words}
    if op == "completions":
        wl = _wordlist.PGPWordList()
        out = []
        for prefix in req["prefixes"]:
            if "num_words" in req:
                c = wl.get_completions(prefix, req["num_words"])
            else:
                c = wl.get_completions(prefix)  # the default the input helper uses
            out.append(sorted(c))
        return {"completions": out}
    if op == "choose":
        real_os = _wordlist.os
        _wordlist.os = FixedOS(bytes.fromhex(req["bytes"]))
        try:
            words = _wordlist.PGPWordList().choose_words(req["n"])
        finally:
            _wordlist.os = real_os
        return {"words": words}
    if op == "validate":
        return {"code": [check(validate_code, s) for s in req["strings"]],
                "nameplate": [check(validate_nameplate, s) for s in req["strings"]]}
    if op == "digits":
        # Code points Python's \d accepts, and the Unicode version it uses.
        d = [cp for cp in range(sys.maxunicode + 1) if re.search(r"^\d+$", chr(cp))]
        return {"digits": d, "unidata": unicodedata.unidata_version}
    if op == "categories":
        return {"categories": [unicodedata.category(chr(cp)) for cp in req["cps"]]}
    raise ValueError("unknown op " + op)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except Exception as e:
            resp = {"error": type(e).__name__, "text": str(e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
