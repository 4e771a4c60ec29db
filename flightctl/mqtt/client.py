"""One MQTT 5 connection on asyncio, on paho's public API only (its callbacks and its external-loop calls).

paho does the protocol; this module does the I/O on our event loop, the way paho documents for an external
loop: ``on_socket_open``/``on_socket_close`` add and remove the reader, ``on_socket_register_write`` and
``unregister_write`` the writer, and ``loop_misc`` runs once a second for keep-alives. What it adds:
- **Confirmed publishes.** A QoS 1 publish waits for its PUBACK, keyed by message id, and returns the PUBACK's
  reason code: a broker that refuses a message (0x87 not authorised) is told apart from one that took it.
- **One client, one connection.** A client connects once and is thrown away when the connection ends; a new
  connection gets a fresh client, so paho never re-sends an old message after a reconnect (the outbox is the
  only source of re-sends).
- **Waits that a stop always cancels.** Every wait has a deadline (``asyncio.timeout``, never ``wait_for``, which
  on Python 3.11 swallows a cancellation that arrives with the answer) and raises ``BrokerUnavailable`` saying
  what did not come.
- **Manual acknowledgement** (``manual_ack=True``): a QoS 1 message is acknowledged only when ``ack`` is called,
  after it was handled, so a consumer that dies before then gets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from flightctl.errors import FlightctlError, Refused, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
MISC_PERIOD_S = 1.0  # paho's keep-alive and retry bookkeeping


class BrokerError(FlightctlError):
    """Talking to the MQTT broker failed."""


class BrokerUnavailable(BrokerError, Unavailable):
    """No connection to the broker, or it dropped, or an answer did not come in time: connect again later."""


class BrokerRefused(BrokerError, Refused):
    """The broker answered with a failure reason code (e.g. not authorised): the message is not sent."""

    def __init__(self, topic: str, reason: ReasonCode, *, what: str = "the message on") -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"the broker refused {what} {topic}: {reason} (0x{reason.value:02x})")


@dataclass(frozen=True)
class Message:
    """A message that arrived."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    properties: Properties | None = None


@dataclass(frozen=True)
class Will:
    """The last will the broker publishes for us when the connection ends without a word from us."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties | None = None


class MqttClient:
    """One connection to the broker (``async with``); see the module's documentation."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        will: Will | None = None,
        keepalive_s: int = 30,
        clean_start: bool = True,
        properties: Properties | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout_s: float = 10.0,
        manual_ack: bool = False,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.timeout_s = timeout_s
        self._keepalive_s = keepalive_s
        self._clean_start = clean_start
        self._connect_properties = properties
        self._loop = asyncio.get_running_loop()
        self._paho = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        if username is not None:
            self._paho.username_pw_set(username, password)
        if tls_context is not None:
            self._paho.tls_set_context(tls_context)
        if will is not None:
            self._paho.will_set(will.topic, will.payload, will.qos, will.retain, will.properties)
        self._paho.on_connect = self._on_connect
        self._paho.on_disconnect = self._on_disconnect
        self._paho.on_subscribe = self._on_subscribe
        self._paho.on_publish = self._on_publish
        self._paho.on_message = self._on_message
        self._paho.on_socket_open = self._on_socket_open
        self._paho.on_socket_close = self._on_socket_close
        self._paho.on_socket_register_write = self._on_socket_register_write
        self._paho.on_socket_unregister_write = self._on_socket_unregister_write
        self._connack: asyncio.Future[None] = self._loop.create_future()
        self._closed = asyncio.Event()
        self._close_reason: BrokerUnavailable | None = None  # why the connection ended, if not by our own word
        self._subscribes: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._publishes: dict[int, asyncio.Future[ReasonCode]] = {}
        self._inbox: asyncio.Queue[Message | None] = asyncio.Queue()
        self._misc: asyncio.Task[None] | None = None
        self._used = False

    def __repr__(self) -> str:
        state = "CLOSED" if self._closed.is_set() else "OPEN" if self._connack.done() else "NEW"
        return f"<MqttClient {self.client_id} {self.host}:{self.port} [{state}]>"

    # ---- the connection -----------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._used:
            raise RuntimeError("an MqttClient makes one connection: make a fresh one to connect again")
        self._used = True
        try:
            # paho's connect blocks on the TCP connect and the TLS handshake: on a thread, never on the loop.
            await self._loop.run_in_executor(None, self._connect_blocking)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self._end(BrokerUnavailable(f"broker {self.host}:{self.port}: {exc}"))
            raise self._close_reason from None  # type: ignore[misc]  # set just above
        try:
            await self._wait(self._connack, self.timeout_s, "CONNACK")
        except BaseException:
            self._paho.disconnect()
            self._end(None)
            raise
        return self

    def _connect_blocking(self) -> None:
        self._paho.connect(
            self.host,
            self.port,
            keepalive=self._keepalive_s,
            clean_start=self._clean_start,
            properties=self._connect_properties,
        )

    async def __aexit__(self, *_exc: object) -> None:
        if not self._closed.is_set():
            self._paho.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    await self._closed.wait()
        self._end(None)

    async def disconnect_keeping_will(self, timeout_s: float = 2.0) -> None:
        """End the connection so that the broker still publishes our last will: MQTT 5's DISCONNECT with reason
        0x04, "Disconnect with Will Message" (mosquitto: handle_disconnect.c keeps the will for it; any other
        DISCONNECT discards it). For a process going down by a crash: a clean DISCONNECT would say "all is well"
        and leave the drone shown online. Best effort: a connection already gone keeps the will anyway."""
        if self._closed.is_set():
            return
        reason = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        if self._paho.disconnect(reasoncode=reason) != paho.MQTT_ERR_SUCCESS:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()

    def _end(self, reason: BrokerUnavailable | None) -> None:
        """The connection is over: every wait fails with ``reason`` (or a plain "closed"), the reader stops."""
        if self._close_reason is None:
            self._close_reason = reason or BrokerUnavailable(f"the connection to {self.host}:{self.port} is closed")
        if not self._connack.done():
            self._connack.set_exception(self._close_reason)
            self._connack.exception()  # retrieved: whoever waits on it has its own copy
        pending: list[asyncio.Future[Any]] = [*self._subscribes.values(), *self._publishes.values()]
        for answer in pending:
            if not answer.done():
                answer.set_exception(self._close_reason)
                answer.exception()
        self._subscribes.clear()
        self._publishes.clear()
        if not self._closed.is_set():
            self._closed.set()
            self._inbox.put_nowait(None)  # wakes a reader of ``messages``
        if self._misc is not None:
            self._misc.cancel()

    async def _wait(self, awaitable: Awaitable[T], timeout_s: float, what: str) -> T:
        try:
            async with asyncio.timeout(timeout_s):
                return await awaitable
        except TimeoutError:
            raise BrokerUnavailable(f"broker {self.host}:{self.port}: no {what} within {timeout_s:g} s") from None

    # ---- what we send -----------------------------------------------------------------------------------------

    async def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        """Subscribe and return the SUBACK's reason codes; ``BrokerRefused`` when the broker refused the filter
        (a daemon or relay whose account may not read its own topics would otherwise hear nothing, and say
        nothing)."""
        result, mid = self._paho.subscribe(topic, qos)
        if result != paho.MQTT_ERR_SUCCESS or mid is None:
            raise self._refused_send(f"subscribe to {topic}", result)
        answer: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._subscribes[mid] = answer
        try:
            reasons = await self._wait(answer, self.timeout_s, f"SUBACK for {topic}")
        finally:
            self._subscribes.pop(mid, None)
        for reason in reasons:
            if reason.is_failure:
                raise BrokerRefused(topic, reason, what="the subscription to")
        return reasons

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False, properties: Properties | None = None
    ) -> None:
        """Publish without waiting for the broker (QoS 0: telemetry, which a newer sample replaces)."""
        info = self._paho.publish(topic, payload, qos, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise self._refused_send(f"publish on {topic}", info.rc)

    async def publish_confirmed(
        self,
        topic: str,
        payload: bytes,
        *,
        timeout_s: float,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it with a success code; ``BrokerRefused``
        for a failure code, ``BrokerUnavailable`` when no PUBACK came."""
        info = self._paho.publish(topic, payload, 1, retain, properties)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise self._refused_send(f"publish on {topic}", info.rc)
        # The PUBACK is read by this loop's reader, which cannot run before we wait: registering now is in time.
        answer: asyncio.Future[ReasonCode] = self._loop.create_future()
        self._publishes[info.mid] = answer
        try:
            reason = await self._wait(answer, timeout_s, f"PUBACK for the message on {topic}")
        finally:
            self._publishes.pop(info.mid, None)
        if reason.is_failure:
            raise BrokerRefused(topic, reason)

    def ack(self, message: Message) -> None:
        """Acknowledge a QoS 1 message that was handled (with ``manual_ack``)."""
        if message.qos > 0 and not self._closed.is_set():
            self._paho.ack(message.mid, message.qos)

    def _refused_send(self, what: str, code: int) -> BrokerUnavailable:
        if self._close_reason is not None:
            return BrokerUnavailable(f"could not {what}: {self._close_reason}")
        return BrokerUnavailable(f"could not {what}: {paho.error_string(code)}")

    # ---- what arrives -----------------------------------------------------------------------------------------

    @property
    def messages(self) -> AsyncIterator[Message]:
        """Messages in the order they arrived; ends with ``BrokerUnavailable`` when the connection does."""
        return self._messages()

    def arrived(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages that have already arrived, without waiting (for a consumer that handles them
        in batches: the first from ``messages``, the rest from here); none once the connection has ended."""
        taken: list[Message] = []
        while len(taken) < limit and not self._inbox.empty():
            message = self._inbox.get_nowait()
            if message is None:
                self._inbox.put_nowait(None)  # the end stays for ``messages`` to raise
                break
            taken.append(message)
        return taken

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            message = await self._inbox.get()
            if message is None:
                self._inbox.put_nowait(None)  # another reader sees the end too
                raise self._close_reason or BrokerUnavailable("the connection is closed")
            yield message

    # ---- paho's callbacks (on the loop, except the socket ones during connect, which run on its thread) ------

    def _on_connect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        if self._connack.done():
            return
        if reason.is_failure:
            self._connack.set_exception(BrokerUnavailable(f"broker {self.host}:{self.port} refused us: {reason}"))
        else:
            self._connack.set_result(None)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _properties: Any
    ) -> None:
        said = "" if reason.value == 0 else f": {reason}"
        self._end(BrokerUnavailable(f"the connection to {self.host}:{self.port} ended{said}"))

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reasons: list[ReasonCode], _properties: Any
    ) -> None:
        answer = self._subscribes.get(mid)
        if answer is not None and not answer.done():
            answer.set_result(reasons)

    def _on_publish(self, _client: paho.Client, _userdata: Any, mid: int, reason: ReasonCode, _properties: Any) -> None:
        answer = self._publishes.get(mid)
        if answer is not None and not answer.done():
            answer.set_result(reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        properties = getattr(message, "properties", None)
        self._inbox.put_nowait(
            Message(message.topic, bytes(message.payload), message.qos, message.retain, message.mid, properties)
        )

    def _on_socket_open(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        def readable() -> None:
            try:
                client.loop_read()
                # A TLS socket may hold decoded bytes the selector never announces: read them too.
                while (tls := client.socket()) is not None and hasattr(tls, "pending") and tls.pending() > 0:
                    client.loop_read()
            except Exception as exc:
                self._end(BrokerUnavailable(f"the connection to {self.host}:{self.port} failed: {exc}"))

        def start() -> None:
            if sock.fileno() < 0:  # closed before the loop got to it
                return
            self._loop.add_reader(sock.fileno(), readable)
            self._misc = self._loop.create_task(self._keep_alive(), name=f"mqtt-misc-{self.client_id}")

        self._on_loop(start)

    def _on_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` now when paho called from the event loop's thread; otherwise (the connect, which
        runs in an executor) hand it to the loop. Deferring on the loop's own thread would let paho close the
        socket first, and the selector would then be asked about a closed file descriptor."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            action()
        else:
            self._loop.call_soon_threadsafe(action)

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()  # paho calls this before it closes the socket
        if fileno >= 0:
            self._on_loop(lambda: self._forget_socket(fileno))

    def _forget_writer(self, fileno: int) -> None:
        self._loop.remove_writer(fileno)

    def _forget_socket(self, fileno: int) -> None:
        self._loop.remove_reader(fileno)
        self._loop.remove_writer(fileno)

    def _on_socket_register_write(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        def writable() -> None:
            try:
                client.loop_write()
            except Exception as exc:
                self._end(BrokerUnavailable(f"the connection to {self.host}:{self.port} failed: {exc}"))

        fileno = sock.fileno()
        self._on_loop(lambda: self._watch_writable(sock, fileno, writable))

    def _watch_writable(self, sock: Any, fileno: int, writable: Callable[[], None]) -> None:
        if sock.fileno() == fileno:  # still open: a handed-over registration may arrive after the close
            self._loop.add_writer(fileno, writable)

    def _on_socket_unregister_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        fileno = sock.fileno()
        if fileno >= 0:
            self._on_loop(lambda: self._forget_writer(fileno))

    async def _keep_alive(self) -> None:
        """paho's periodic work (PINGREQ when due, a missing PINGRESP ending the connection), once a second."""
        while self._paho.loop_misc() == paho.MQTT_ERR_SUCCESS:  # noqa: ASYNC110  (a period, not a condition)
            await asyncio.sleep(MISC_PERIOD_S)
