"""Open one TCP connection and keep it open, idle, until killed (a peer's idle keep-alive).

    python3 hold.py 127.0.0.1 15006
"""

import socket
import sys
import time

conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(f"connected from {conn.getsockname()[0]}:{conn.getsockname()[1]}", flush=True)
while True:
    time.sleep(60)
