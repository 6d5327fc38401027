# Example: a Pyboard 1.x (no network) as node "pump1" through `tether bridge`.
# Wiring: board X9 (UART1 TX) -> the host's RX, X10 (UART1 RX) <- the host's
# TX, GND <-> GND. On the host:
#   tether bridge --serial /dev/serial0 --baud 115200 --id pump1 --server gw:8123
# Copy tether_board.py and this file to the board.
import uasyncio as asyncio
from machine import UART
from tether_board import Board


def state(up):
    # Called when the line to the server goes up or down, end to end.
    print('server link', 'up' if up else 'down')


async def reader(board):
    while True:
        line = await board.readline()   # a line from the server, with LF
        print('got', line, end='')


async def main():
    board = Board.from_uart(UART(1, 115200), timeout_ms=2000, state_cb=state)
    board.start()
    asyncio.create_task(reader(board))
    n = 0
    while True:
        # qos: returns once the bridge has stored the line; it reaches the
        # server exactly once, whatever the outages.
        await board.write('{"n": %d, "status": %s}' % (n, 'true' if board.status() else 'false'))
        n += 1
        await asyncio.sleep(5)

asyncio.run(main())
