"""`TcpProxy`: a loopback TCP forwarder in front of a real server, which can refuse connections or cut them after
some bytes: a real network failure between a client and a server whose state survives for inspection."""

from __future__ import annotations

import select
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to an upstream TCP server, in background threads.

    - `refuse()`: stop listening and drop open connections; clients get "connection refused" (the endpoint is
      down), the upstream server keeps its state. `restore()` listens again on the same port.
    - `cut_uploads_after(n)`: any connection that has sent more than `n` bytes upstream is reset mid-stream (a
      network failure in the middle of an upload; requests without a large body pass).
    """

    def __init__(self, upstream_port: int, host: str = "127.0.0.1"):
        self.host = host
        self.upstream_port = upstream_port
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self.upload_limit: int | None = None
        self.cut_connections = 0

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port or 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop = threading.Event()
        thread = threading.Thread(target=self._accept_loop, args=(listener, self._stop), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def refuse(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._drop_connections()

    def restore(self) -> None:
        self.upload_limit = None
        if self._listener is None:
            self.start()

    def cut_uploads_after(self, limit: int | None) -> None:
        self.upload_limit = limit

    def close(self) -> None:
        self.refuse()
        for thread in self._threads:
            thread.join(timeout=2)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _drop_connections(self) -> None:
        with self._lock:
            connections, self._connections = set(self._connections), set()
        for connection in connections:
            _close(connection)

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if not ready:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed by refuse()
                return
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._connections.update((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream, stop), daemon=True)
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket, stop: threading.Event) -> None:
        sent_upstream = 0
        try:
            while not stop.is_set():
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        sent_upstream += len(data)
                        if self.upload_limit is not None and sent_upstream > self.upload_limit:
                            self.cut_connections += 1
                            # Forward what fits under the limit, then reset both sides (RST, not a clean close).
                            keep = max(0, len(data) - (sent_upstream - self.upload_limit))
                            if keep:
                                upstream.sendall(data[:keep])
                            _reset(client)
                            _reset(upstream)
                            return
                        upstream.sendall(data)
                    else:
                        client.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(client)
            _close(upstream)
            with self._lock:
                self._connections.discard(client)
                self._connections.discard(upstream)


def _reset(sock: socket.socket) -> None:
    try:
        import struct

        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
