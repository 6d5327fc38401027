# selftest.py: tether_board against a scripted bridge, in memory. It runs
# under MicroPython (scripts/test runs it on MicroPython's WebAssembly
# port, see micropython.mjs) and under CPython (bridge/python_test.go), so
# that the library stays free of anything either lacks.
try:
    import uasyncio as asyncio
except ImportError:
    import asyncio
import tether_board as tb


class Pipe:
    # One direction of a serial line: write() on one end, readline() on
    # the other.
    def __init__(self):
        self.buf = b''
        self.ev = asyncio.Event()

    def write(self, b):
        self.buf += b
        self.ev.set()

    async def drain(self):
        pass

    async def readline(self):
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                line = self.buf[:i + 1]
                self.buf = self.buf[i + 1:]
                return line
            self.ev.clear()
            await self.ev.wait()


def bframe(line):
    # A frame from the bridge (flag u: the server link is up).
    body = b'u' + line
    return b'~' + body + ('%08x' % tb._crc(body)).encode() + b'\n'


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def bridge(rx, tx, got, done):
    # The bridge's side, scripted: ACK the board's messages, send a boot
    # message, a line, its repeat, a corrupted frame, another line.
    tx.write(b'noise before any frame\n')
    tx.write(bframe(b'00boot 0badf00d'))
    tx.write(bframe(b'01hello'))
    tx.write(bframe(b'01hello'))  # a repeat: ACKed, not delivered
    bad = bframe(b'02world')
    tx.write(bad[:5] + b'X' + bad[6:])  # corrupted: dropped
    tx.write(bframe(b'02world'))
    while not done.is_set():
        raw = await rx.readline()
        f = tb.unframe(raw[:-1])
        check(f is not None, 'the board sent a bad frame: %r' % raw)
        flag, line = f
        check(flag == b'-', 'board flag %r' % flag)
        if len(line) > 2:
            got.append(line)
            tx.write(bframe(line[:2]))  # ACK


async def main():
    check(tb._crc32_py(b'123456789') == 0xcbf43926, 'pure-Python CRC-32')
    check(tb._crc(b'123456789') == 0xcbf43926, 'CRC-32')
    check(tb.frame(b'00boot 1a2b3c4d') == b'~-00boot 1a2b3c4d88b52c7e\n', 'frame layout')
    check(tb.unframe(b'junk~-0188b52c7e') is None, 'a bad CRC passes')
    to_board, from_board = Pipe(), Pipe()
    states = []
    board = tb.Board(to_board, from_board, timeout_ms=400, state_cb=states.append)
    board.start()
    got = []
    done = asyncio.Event()
    asyncio.create_task(bridge(from_board, to_board, got, done))
    await board.write('b1')
    await board.write('b2\n')
    a = await board.readline()
    b = await board.readline()
    check(a == 'hello\n' and b == 'world\n', 'lines %r %r' % (a, b))
    check(board.status() and states == [True], 'status %r %r' % (board.status(), states))
    check(board.dupes == 1, 'dupes %d' % board.dupes)
    check(board.bad >= 2, 'bad %d' % board.bad)
    ids = [x[:2] for x in got]
    check(ids == [b'00', b'01', b'02'], 'ids %r' % ids)
    check(got[1:] == [b'01b1', b'02b2'], 'lines at the bridge %r' % got)
    try:
        await board.write('two\nlines')
        check(False, 'a two-line write passed')
    except ValueError:
        pass
    done.set()
    board.close()
    print('selftest ok')


if __name__ == '__main__':
    asyncio.run(main())
