"""The served clients' receive path: HTTP/1.1 over TCP on the event loop — read, split, stamp, nothing else.

A benchmark client's arrival time is only as good as the moment it is taken. Here each readable
event of a connection is one ``recvmsg`` whose bytes are stamped twice: in user space, as the
callback starts (``time.perf_counter``), and by the kernel, when the last packet of the read
reached the socket (``SO_TIMESTAMPNS``, converted to the same clock). The kernel's stamp does not
move when the event loop is late; the gap between the two is the loop's receive lag, which the
self-check watches. The callback does only what the transport needs: find the end of the headers,
strip the chunked framing, append the payload, and note (stamps, payload length) per read. Parsing
the stream's events and JSON, counting tokens and tokenizing happen after the round
(``Exchange.events``).

Plain sockets and ``loop.add_reader`` (any asyncio loop: the default, or uvloop where installed),
no HTTP library on the path. Requests are prebuilt bytes; a connection carries one request at a time
and is kept alive for the next (``ConnectionPool``). Linux gives kernel stamps; elsewhere the user
stamp stands alone and the record says so.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Iterator

#: Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) on every 64-bit architecture; Python does not export it
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
#: one read takes whatever is waiting, up to this much
READ_BYTES = 1 << 18
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 64


def kernel_stamps_available() -> bool:
    return sys.platform.startswith("linux")


def _kernel_stamp(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive stamp (CLOCK_REALTIME seconds) among a ``recvmsg``'s ancillary data, if any."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return seconds + nanoseconds * 1e-9
    return None


#: a socket that asks for receive stamps for as long as this process runs (``hold_kernel_stamping``),
#: and whether the kernel was seen stamping once it did
_stamping_keeper: socket.socket | None = None
_stamping_seen = False


def hold_kernel_stamping(wait_s: float = 0.2) -> bool:
    """Keep the kernel stamping packets from now on, and wait until it does; False if it never did.

    Linux stamps arriving packets only while some socket on the machine asks for stamps, and turns
    that on lazily (a deferred switch) when the first one does. A client whose own connections were
    the first to ask read their first bytes unstamped; a stand-in server that asked only on accepted
    sockets stamped 1 request in 5 with its own read instead (found against the truth log). One
    datagram socket per process holds stamping on; a datagram sent to itself shows when it is on
    (once: while the socket is open, stamping stays on)."""
    global _stamping_keeper, _stamping_seen
    if _stamping_seen or not kernel_stamps_available():
        return _stamping_seen
    if _stamping_keeper is None:
        keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            keeper.bind(("127.0.0.1", 0))
        except OSError:
            keeper.close()
            return False
        keeper.settimeout(wait_s)
        _stamping_keeper = keeper
    keeper, deadline = _stamping_keeper, time.monotonic() + wait_s
    while True:
        try:
            keeper.sendto(b".", keeper.getsockname())
            _, ancillary, _, _ = keeper.recvmsg(1, _ANCILLARY_BYTES)
        except OSError:
            return False
        if _kernel_stamp(ancillary) is not None:
            _stamping_seen = True
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)


def release_kernel_stamping() -> None:
    """Stop holding stamping on (the kernel turns it off once no socket asks for it)."""
    global _stamping_keeper, _stamping_seen
    if _stamping_keeper is not None:
        _stamping_keeper.close()
        _stamping_keeper, _stamping_seen = None, False


def realtime_offset_s(samples: int = 16) -> float:
    """CLOCK_REALTIME − ``time.perf_counter`` (CLOCK_MONOTONIC on Linux), from the tightest of
    ``samples`` bracketing reads: kernel stamps are real time, the client's clock is monotonic."""
    best_gap, offset = float("inf"), 0.0
    for _ in range(samples):
        before = time.perf_counter()
        real = time.clock_gettime(time.CLOCK_REALTIME)
        after = time.perf_counter()
        if after - before < best_gap:
            best_gap, offset = after - before, real - (before + after) / 2
    return offset


@dataclass
class Exchange:
    """One request and its response as the wire saw them; times on ``time.perf_counter``'s clock."""

    send_s: float | None = None
    #: when the send of the request's last byte returned: the request left within [send_s, sent_s]
    sent_s: float | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: the response body, chunked framing removed
    body: bytearray = field(default_factory=bytearray)
    #: per read of the response: the user-space stamp, the kernel's (None: not given), the body's length after it
    read_user_s: list[float] = field(default_factory=list)
    read_kernel_s: list[float | None] = field(default_factory=list)
    read_body_end: list[int] = field(default_factory=list)
    #: when the response's last byte arrived (kernel stamp where given)
    done_s: float | None = None
    error: str | None = None
    #: the connection was opened for this request (its connect time is before ``send_s``)
    connected_s: float | None = None

    def arrival_s(self, read: int) -> float:
        """A read's arrival: the kernel's stamp where given, else the user-space one."""
        kernel = self.read_kernel_s[read]
        return kernel if kernel is not None else self.read_user_s[read]

    def read_of(self, body_offset: int) -> int:
        """The read that delivered the body's byte at ``body_offset - 1`` (the end of something)."""
        return bisect_left(self.read_body_end, body_offset)

    def events(self) -> Iterator[tuple[int, bytes]]:
        """The body's server-sent events: (the read that completed it, its bytes), in order."""
        body = bytes(self.body)
        start = 0
        while True:
            cut = body.find(b"\n\n", start)
            if cut < 0:
                break
            yield self.read_of(cut + 2), body[start:cut]
            start = cut + 2

    def receive_lags_s(self) -> list[float]:
        """Per read, user-space stamp − kernel stamp: how late the loop got to bytes already there."""
        return [u - k for u, k in zip(self.read_user_s, self.read_kernel_s) if k is not None]


class _Framing:
    """HTTP/1.1 response framing, fed as bytes arrive: headers, then a chunked, sized or until-close body."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.head = bytearray()
        self.buffer = b""
        self.mode: str | None = None  # "chunked", "length", "close"
        self.state = "size"  # chunked: "size", "data", "crlf" (after a chunk's data), "trailer"
        self.remaining = 0  # bytes left in the current chunk (chunked) or the body (length)
        self.done = False
        self.keep_alive = True

    def feed(self, data: bytes) -> None:
        if self.mode is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            data = bytes(self.head[end + 4:])
            self._headers(bytes(self.head[:end]))
        if self.mode == "length":
            take = data[: self.remaining]
            self.exchange.body += take
            self.remaining -= len(take)
            self.done = self.remaining <= 0
        elif self.mode == "close":
            self.exchange.body += data
        else:
            self._chunks(data)

    def _headers(self, raw: bytes) -> None:
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"status line {lines[0][:60]!r}")
        exchange = self.exchange
        exchange.status = int(parts[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            exchange.headers[name.strip().lower()] = value.strip()
        headers = exchange.headers
        self.keep_alive = headers.get("connection", "").lower() != "close"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in headers:
            self.mode, self.remaining = "length", int(headers["content-length"])
            self.done = self.remaining == 0
        else:
            self.mode, self.keep_alive = "close", False

    def _chunks(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        position, size = 0, len(buffer)
        body = self.exchange.body
        while position < size and not self.done:
            if self.state == "data":
                take = min(self.remaining, size - position)
                body += buffer[position: position + take]
                position += take
                self.remaining -= take
                if not self.remaining:
                    self.state, self.remaining = "crlf", 2
            elif self.state == "crlf":
                skip = min(self.remaining, size - position)
                position += skip
                self.remaining -= skip
                if not self.remaining:
                    self.state = "size"
            else:  # a line: a chunk's size, or the trailer section after the last chunk
                end = buffer.find(b"\r\n", position)
                if end < 0:
                    break
                line, position = buffer[position:end], end + 2
                if self.state == "trailer":
                    self.done = not line
                    continue
                length = int(line.split(b";", 1)[0].strip() or b"0", 16)
                self.state, self.remaining = ("data", length) if length else ("trailer", 0)
        self.buffer = buffer[position:] if position < size else b""


class Connection:
    """One keep-alive HTTP/1.1 connection to ``host:port``, read by ``loop.add_reader``."""

    def __init__(self, host: str, port: int, realtime_offset: float) -> None:
        self.host, self.port = host, port
        self.realtime_offset = realtime_offset
        self.sock: socket.socket | None = None
        self.usable = False
        self._exchange: Exchange | None = None
        self._framing: _Framing | None = None
        self._finished: asyncio.Future[Exchange] | None = None
        self._kernel = kernel_stamps_available()

    async def connect(self, loop: asyncio.AbstractEventLoop) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._kernel:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError:
                self._kernel = False
        try:
            await loop.sock_connect(sock, (self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock, self.usable = sock, True
        loop.add_reader(sock.fileno(), self._readable)

    def request(self, payload: bytes, exchange: Exchange, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Exchange]:
        """Write ``payload`` (stamping ``exchange.send_s`` just before and ``sent_s`` once it is all
        written) and return a future of the response."""
        assert self.sock is not None and self._finished is None
        self._exchange, self._framing = exchange, _Framing(exchange)
        self._finished = loop.create_future()
        exchange.send_s = time.perf_counter()
        try:
            sent = self.sock.send(payload)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._fail(f"cannot send: {exc}")
            return self._finished
        if sent < len(payload):  # a full send buffer: the rest goes out when the socket is writable
            rest = asyncio.ensure_future(loop.sock_sendall(self.sock, payload[sent:]))
            rest.add_done_callback(lambda _: setattr(exchange, "sent_s", time.perf_counter()))
        else:
            # a process preempted between the stamp and the syscall sent later than send_s says (a
            # neighbour's pause put 0.6 ms there): the stamp after bounds it
            exchange.sent_s = time.perf_counter()
        return self._finished

    def _readable(self) -> None:
        user = time.perf_counter()
        sock = self.sock
        if sock is None:
            return
        try:
            data, ancillary, _, _ = sock.recvmsg(READ_BYTES, _ANCILLARY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"connection error: {exc}")
            return
        exchange, framing = self._exchange, self._framing
        if exchange is None or framing is None:  # bytes (or a close) between requests: the connection is done
            self.close()
            return
        if not data:
            if framing.mode == "close":
                framing.done = True
                exchange.done_s = user
                self._finish()
            else:
                self._fail(f"the server closed the connection after {len(exchange.body)} body bytes")
            return
        real = _kernel_stamp(ancillary)
        kernel = real - self.realtime_offset if real is not None else None
        exchange.read_user_s.append(user)
        exchange.read_kernel_s.append(kernel)
        try:
            framing.feed(data)
        except ValueError as exc:
            self._fail(f"malformed HTTP response: {exc}")
            return
        exchange.read_body_end.append(len(exchange.body))
        if framing.done:
            exchange.done_s = kernel if kernel is not None else user
            self._finish()

    def _finish(self) -> None:
        exchange, finished, framing = self._exchange, self._finished, self._framing
        self._exchange = self._framing = self._finished = None
        if framing is not None and not framing.keep_alive:
            self.close()
        if finished is not None and exchange is not None and not finished.done():
            finished.set_result(exchange)

    def _fail(self, reason: str) -> None:
        exchange, finished = self._exchange, self._finished
        self._exchange = self._framing = self._finished = None
        if exchange is not None:
            exchange.error = reason
            exchange.done_s = time.perf_counter()
        self.close()
        if finished is not None and not finished.done() and exchange is not None:
            finished.set_result(exchange)

    def close(self) -> None:
        self.usable = False
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            asyncio.get_event_loop().remove_reader(sock.fileno())
        except (RuntimeError, ValueError):
            pass
        sock.close()
        if self._exchange is not None:
            self._fail("the connection was closed")


class ConnectionPool:
    """Idle keep-alive connections to one server, opened as the load needs them."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.opened = 0
        self.realtime_offset = realtime_offset_s()
        hold_kernel_stamping()

    def refresh_clock(self) -> None:
        """Measure the real-time offset again (before a round: NTP may have slewed the clock)."""
        self.realtime_offset = realtime_offset_s()
        for connection in self.idle:
            connection.realtime_offset = self.realtime_offset

    async def exchange(self, payload: bytes, exchange: Exchange, loop: asyncio.AbstractEventLoop) -> Exchange:
        """Send ``payload`` on an idle connection (or a new one) and wait for the whole response."""
        while self.idle and not self.idle[-1].usable:
            self.idle.pop()
        if self.idle:
            connection = self.idle.pop()
        else:
            connection = Connection(self.host, self.port, self.realtime_offset)
            try:
                await connection.connect(loop)
            except OSError as exc:
                exchange.error = f"cannot connect to {self.host}:{self.port}: {exc}"
                exchange.done_s = time.perf_counter()
                return exchange
            self.opened += 1
            exchange.connected_s = time.perf_counter()
        try:
            await connection.request(payload, exchange, loop)
        except asyncio.CancelledError:
            connection.close()  # a request cut by its timeout: its connection may still be streaming
            raise
        if connection.usable:
            self.idle.append(connection)
        return exchange

    async def warm(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        """Open connections up to ``count`` idle ones before a round (their connect is not a request's)."""
        missing = max(0, count - len(self.idle))
        fresh = [Connection(self.host, self.port, self.realtime_offset) for _ in range(missing)]
        await asyncio.gather(*(c.connect(loop) for c in fresh))
        self.idle.extend(fresh)
        self.opened += len(fresh)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def post(host: str, port: int, path: str, body: bytes, extra_headers: str = "") -> bytes:
    """A prebuilt HTTP/1.1 POST of a JSON body (built before the round, sent as is)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n{extra_headers}\r\n"
    )
    return head.encode("latin-1") + body
