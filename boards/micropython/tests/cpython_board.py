# A board under CPython, for the bridge's tests: it opens a serial port (a
# pseudo-terminal), writes lines b1..bN through tether_board, reads M lines
# and prints each as "got LINE", then "done". Standard library only.
#
#   python3 cpython_board.py PORT N M TIMEOUT_MS [RESTART_AT]
#
# With RESTART_AT, the board restarts (a new Board, a new boot message)
# before writing line RESTART_AT, once it has read every line it expects
# before then (the first half of M).
import asyncio
import os
import sys
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
import tether_board  # noqa: E402


async def open_port(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    rf = os.fdopen(fd, 'rb', buffering=0)
    rt, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rf)
    wf = os.fdopen(os.dup(fd), 'wb', buffering=0)
    wt, wp = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, wf)
    writer = asyncio.StreamWriter(wt, wp, reader, loop)
    return reader, writer, rt


async def main():
    path, n, m, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    restart_at = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    reader, writer, rt = await open_port(path)
    states = []
    board = tether_board.Board(reader, writer, timeout_ms=t, state_cb=states.append)
    board.start()
    got = [0]
    half = asyncio.Event()
    done = asyncio.Event()

    async def read(b):
        while got[0] < m:
            line = await b.readline()
            got[0] += 1
            print('got', line.rstrip('\n'), flush=True)
            if got[0] == m // 2:
                half.set()
        done.set()

    rd = asyncio.create_task(read(board))
    for i in range(1, n + 1):
        if i == restart_at:
            await half.wait()
            rd.cancel()
            board.close()
            board = tether_board.Board(reader, writer, timeout_ms=t, state_cb=states.append)
            board.start()
            print('restarted', flush=True)
            rd = asyncio.create_task(read(board))
        await board.write('b%d' % i)
    await done.wait()
    print('states', ' '.join(str(s) for s in states), flush=True)
    print('done bad=%d dupes=%d repeats=%d' % (board.bad, board.dupes, board.repeats), flush=True)
    board.close()
    rt.close()
    writer.close()


asyncio.run(main())
