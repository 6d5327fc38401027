# tether_board.py: the board's end of the Tether serial bridge.
#
# A board with only a UART (or USB serial) runs this and gets the API of a
# micropython-iot node: write(), readline(), status() and a state callback.
# The PC side is `tether bridge`. The framing and the protocol are in
# spec.md beside this file. MicroPython (uasyncio V3) and CPython (asyncio).
# MIT licence, as micropython-iot.

try:
    import uasyncio as asyncio
except ImportError:
    import asyncio
try:
    from time import ticks_ms, ticks_diff
except ImportError:
    import time

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b
try:
    from binascii import crc32
except ImportError:
    crc32 = None


def _crc32_py(data):
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (0xedb88320 & -(c & 1))
    return c ^ 0xffffffff


def _crc(data):
    if crc32 is None:
        return _crc32_py(data)
    return crc32(data) & 0xffffffff


def _sleep_ms(ms):
    return asyncio.sleep(ms / 1000)


def _nonce():
    try:
        import os
        r = os.urandom(4)
        n = (r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]
    except Exception:
        import random
        n = random.getrandbits(32) ^ ticks_ms()
    return 'boot %08x' % (n & 0xffffffff)


FLAG = b'-'


def _ishex(c):
    return 48 <= c <= 57 or 97 <= c <= 102


def frame(line):
    # One link line (bytes, no LF) in a frame.
    body = FLAG + line
    return b'~' + body + ('%08x' % _crc(body)).encode() + b'\n'


def unframe(raw):
    # The (flag, line) of a received line (LF stripped), or None.
    n = len(raw)
    if n < 10:
        return None
    tail = raw[n - 8:]
    for c in tail:
        if not _ishex(c):
            return None
    want = int(tail.decode(), 16)
    i = raw.find(b'~')
    while 0 <= i < n - 9:
        body = raw[i + 1:n - 8]
        if _crc(body) == want:
            return body[0:1], body[1:]
        i = raw.find(b'~', i + 1)
    return None


def _hexid(b):
    if len(b) < 2 or not _ishex(b[0]) or not _ishex(b[1]):
        return -1
    return int(b[:2].decode(), 16)


class Board:
    # reader: has `async readline()`; writer: has `write(bytes)` and
    # `async drain()` (uasyncio's StreamReader/StreamWriter on a UART, or
    # asyncio's). timeout_ms must match the bridge's --serial-timeout.
    # state_cb(up) is called when status() changes.
    def __init__(self, reader, writer, timeout_ms=2000, state_cb=None,
                 max_line=4096, rx_queue=20):
        self._r = reader
        self._w = writer
        self._t = timeout_ms
        self._cb = state_cb
        self._max = max_line
        self._rxmax = rx_queue
        self._next = 0
        self._pending = {}  # id -> [data, event, sent_ms]
        self._order = []    # pending ids, oldest first
        self._win = bytearray(32)
        self._zero = None   # payload of the bridge's boot message
        self._rxq = []
        self._rxev = asyncio.Event()
        self._chg = asyncio.Event()
        self._lock = asyncio.Lock()
        self._link = False
        self._server = False
        self._up = False
        self._rx_ms = ticks_ms()
        self._tx_ms = ticks_ms()
        self._tasks = []
        self.bad = 0          # lines that were no valid frame
        self.dupes = 0        # repeats from the bridge
        self.repeats = 0      # our repeats

    @classmethod
    def from_uart(cls, uart, **kw):
        # MicroPython: Board.from_uart(UART(1, 115200), timeout_ms=2000)
        return cls(asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {}), **kw)

    def start(self):
        # Starts the link's tasks and queues the boot message (id 00).
        # The boot message is due at once: the ticker sends it.
        self._pending[0] = [b'00' + _nonce().encode(), asyncio.Event(),
                            ticks_ms() - self._t]
        self._order.append(0)
        self._next = 1
        self._tasks.append(asyncio.create_task(self._reader()))
        self._tasks.append(asyncio.create_task(self._ticker()))

    def close(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    def status(self):
        # True when the line to the server is up end to end.
        return self._link and self._server

    def link_up(self):
        # True when the bridge answers on the serial line.
        return self._link

    def _changed(self):
        ev = self._chg
        self._chg = asyncio.Event()
        ev.set()

    def _state(self):
        # The link or the server's state changed.
        up = self._link and self._server
        if up != self._up:
            self._up = up
            if self._cb is not None:
                self._cb(up)
        self._changed()

    async def readline(self):
        # The next line from the server, with its LF.
        while not self._rxq:
            self._rxev.clear()
            await self._rxev.wait()
        return self._rxq.pop(0) + '\n'

    async def write(self, line, qos=True, wait=True):
        # Sends a line to the server. With qos (the default) it returns once
        # the bridge has stored it (it reaches the server exactly once,
        # whatever the outages); with wait (the default) it is sent only
        # once every earlier qos line has been, which keeps the order.
        if isinstance(line, str):
            line = line.encode()
        if line.endswith(b'\n'):
            line = line[:-1]
        if not line or b'\n' in line or len(line) + 2 > self._max:
            raise ValueError('empty, multi-line or too long')
        while True:
            p = self._pending
            if not (0 in p or len(p) >= 64 or (qos and wait and p) or (not qos and not self._link)):
                break
            await self._chg.wait()
        mid = self._next
        self._next = 1 if mid == 255 else mid + 1
        data = ('%02x' % mid).encode() + line
        ev = None
        if qos or mid == 0:
            ev = asyncio.Event()
            self._pending[mid] = [data, ev, ticks_ms()]
            self._order.append(mid)
        await self._send(data)
        if ev is not None:
            await ev.wait()

    async def _send(self, data):
        f = frame(data)
        async with self._lock:
            self._w.write(f)
            await self._w.drain()
            self._tx_ms = ticks_ms()

    async def _resend(self, all_):
        now = ticks_ms()
        for mid in list(self._order):
            m = self._pending.get(mid)
            if m is None:
                continue
            if all_ or ticks_diff(now, m[2]) >= self._t:
                m[2] = now
                self.repeats += 1
                await self._send(m[0])

    async def _ticker(self):
        q = self._t // 4
        while True:
            await _sleep_ms(q // 2)
            now = ticks_ms()
            if self._link and ticks_diff(now, self._rx_ms) > self._t:
                self._link = False
                self._state()
            if ticks_diff(now, self._tx_ms) >= q:
                await self._send(b'')
            await self._resend(False)

    async def _reader(self):
        while True:
            raw = await self._r.readline()
            if not raw:
                await _sleep_ms(50)
                continue
            if raw[-1:] != b'\n':
                self.bad += 1
                continue
            f = unframe(raw[:-1])
            if f is None:
                self.bad += 1
                continue
            flag, line = f
            self._rx_ms = ticks_ms()
            was, srv = self._link, self._server
            self._link = True
            if flag == b'u' or flag == b'd':
                self._server = flag == b'u'
            if not was or srv != self._server:
                self._state()
            if not was:
                await self._resend(True)
            if not line:
                continue  # keepalive
            mid = _hexid(line)
            if mid < 0:
                self.bad += 1
                continue
            if len(line) == 2:  # an ACK
                m = self._pending.pop(mid, None)
                if m is not None:
                    self._order.remove(mid)
                    m[1].set()
                    self._changed()
                continue
            await self._receive(mid, line[2:])

    async def _receive(self, mid, payload):
        w = self._win
        if mid == 0:  # the bridge's boot message: never a line
            if payload == self._zero:
                self.dupes += 1
            else:  # the bridge started afresh: forget its old ids
                self._zero = payload
                for i in range(32):
                    w[i] = 0
                w[0] |= 1
                w[16] = 0
            await self._send(b'00')
            return
        byte, bit = mid >> 3, 1 << (mid & 7)
        if w[byte] & bit:
            self.dupes += 1
        else:
            if len(self._rxq) >= self._rxmax:
                return  # no ACK: the bridge repeats it later
            try:
                s = payload.decode()
            except Exception:
                self.bad += 1
                return
            w[byte] |= bit
            w[(byte + 16) % 32] = 0
            self._rxq.append(s)
            self._rxev.set()
        await self._send(('%02x' % mid).encode())
