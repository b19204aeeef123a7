"""A teaching xDS control plane: ADS over gRPC, in both variants of the protocol.

    python3 xds_server.py --snapshot snapshot.json --log wire.log (--unix PATH | --port N)

It serves envoy.service.discovery.v3.AggregatedDiscoveryService:

- StreamAggregatedResources, "state of the world" (SotW): every response carries all the
  resources of its type that the client asked for, under one ``version_info``;
- DeltaAggregatedResources, "delta": a response carries only what changed, each resource
  with its own version, and the names of removed resources.

The resources come from a snapshot file, JSON (labs' Python has no YAML parser)::

    {"version": "v1",
     "clusters":  [Cluster, ...],               # Envoy v3 messages as JSON dicts,
     "endpoints": [ClusterLoadAssignment, ...], # exactly as in an Envoy config
     "listeners": [Listener, ...],
     "routes":    [RouteConfiguration, ...]}

The server polls the file's modification time; when it changes, the new snapshot is pushed to
every connected Envoy (only the types whose resources changed). A file that does not parse is
reported in the log and ignored: the previous snapshot stays.

Every message is written to the wire log, one line each: the stream, the direction (``<-`` from
Envoy, ``->`` to Envoy), the type, the version and nonce fields, the resource names, and what
the server made of a request (a new subscription, an ACK, a NACK with its error_detail).

Like istiod, this server answers neither an ACK of what it last sent nor a NACK: after a NACK
the client keeps its previous configuration until the next push. Unlike istiod, nonces are plain counters per stream
and a delta resource's version is a hash of its content, so a restarted server can tell from
the client's ``initial_resource_versions`` what it already holds.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import queue
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import any_pb2, json_format

# Envoy's v3 API (the xds-protos package). The typed_config types the snapshots use must be
# imported too, so that json_format can resolve their "@type".
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 - registers the type
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2,
)
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

# short name -> (type URL, message class, key in the snapshot file)
TYPES = {
    "CDS": ("type.googleapis.com/envoy.config.cluster.v3.Cluster", cluster_pb2.Cluster, "clusters"),
    "EDS": ("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
            endpoint_pb2.ClusterLoadAssignment, "endpoints"),  # fmt: skip
    "LDS": ("type.googleapis.com/envoy.config.listener.v3.Listener", listener_pb2.Listener, "listeners"),
    "RDS": ("type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
            route_pb2.RouteConfiguration, "routes"),  # fmt: skip
}
SHORT = {url: short for short, (url, _, _) in TYPES.items()}
# Resources named by their cluster_name, not by name.
NAME_FIELD = {"EDS": "cluster_name"}


# -- the snapshot -------------------------------------------------------------------------------


class Snapshot:
    """One version of every resource: {type: {name: (Any, content hash)}}."""

    def __init__(self, version: str, resources: dict[str, dict[str, tuple[any_pb2.Any, str]]]):
        self.version = version
        self.resources = resources

    @classmethod
    def load(cls, path: str) -> Snapshot:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        resources = {}
        for short, (_, message_class, key) in TYPES.items():
            resources[short] = {}
            for entry in data.get(key, []):
                message = json_format.ParseDict(entry, message_class())  # unknown fields fail here
                packed = any_pb2.Any()
                packed.Pack(message)
                digest = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()[:8]
                name = getattr(message, NAME_FIELD.get(short, "name"))
                resources[short][name] = (packed, digest)
        return cls(str(data["version"]), resources)

    def select(self, short: str, names, wildcard: bool) -> dict[str, tuple[any_pb2.Any, str]]:
        """The resources a subscription covers: all of the type, or the named ones that exist."""
        mine = self.resources[short]
        return dict(mine) if wildcard else {n: mine[n] for n in sorted(names) if n in mine}


class WireLog:
    def __init__(self, path: str):
        self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the process
        self.lock = threading.Lock()

    def write(self, line: str) -> None:
        with self.lock:
            self.file.write(line + "\n")


def names(items) -> str:
    return "[" + ",".join(items) + "]"


def error_text(status, limit: int = 400) -> str:
    """error_detail on one line: the code, and the message with its line breaks and indentation
    collapsed to single spaces (cut after ``limit`` characters, saying how many are left out)."""
    message = " ".join(status.message.split())
    cut = f" (+{len(message) - limit} chars)" if len(message) > limit else ""
    return f'error_detail={{code={status.code} message="{message[:limit]}"{cut}}}'


class ControlPlane:
    """Holds the current snapshot and tells every open stream when it changes."""

    def __init__(self, path: str, log: WireLog):
        self.path = path
        self.log = log
        self.snapshot = Snapshot.load(path)
        self.streams: list[queue.Queue] = []
        self.lock = threading.Lock()
        self.stream_ids = itertools.count(1)
        log.write(f"== snapshot {self.snapshot.version} loaded from {path}")

    def watch(self, interval: float = 0.1) -> None:
        seen, tries = os.stat(self.path).st_mtime_ns, 0
        while True:
            time.sleep(interval)
            try:
                mtime = os.stat(self.path).st_mtime_ns
            except OSError:
                continue
            if mtime == seen:
                continue
            try:
                snapshot = Snapshot.load(self.path)
            except (ValueError, KeyError, json_format.ParseError) as exc:
                tries += 1
                if tries < 3:  # perhaps caught half-written (cp truncates, then writes): look again
                    continue
                self.log.write(f"== snapshot file not loaded, keeping {self.snapshot.version}: {exc}")
                seen, tries = mtime, 0
                continue
            seen, tries = mtime, 0
            changed = [s for s in TYPES if
                       {n: h for n, (_, h) in snapshot.resources[s].items()} !=
                       {n: h for n, (_, h) in self.snapshot.resources[s].items()}]  # fmt: skip
            self.snapshot = snapshot
            self.log.write(f"== snapshot {snapshot.version} loaded from {self.path} "
                           f"(changed: {', '.join(changed) or 'nothing'})")  # fmt: skip
            with self.lock:
                for q in self.streams:
                    q.put(("snapshot", None))

    def serve_stream(self, stream, requests):
        """Run one ADS stream: requests from Envoy and snapshot changes, one at a time."""
        q: queue.Queue = queue.Queue()

        def pump():
            try:
                for request in requests:
                    q.put(("request", request))
            except grpc.RpcError:
                pass
            q.put(("end", None))

        threading.Thread(target=pump, daemon=True).start()
        with self.lock:
            self.streams.append(q)
        try:
            while True:
                kind, request = q.get()
                if kind == "end":
                    return
                out = stream.on_request(request, self.snapshot) if kind == "request" else stream.on_push(self.snapshot)
                yield from out
        finally:
            with self.lock:
                self.streams.remove(q)
            self.log.write(f"{stream.id} closed")


# -- state of the world ------------------------------------------------------------------------------


class SotwStream:
    """Per type: the names Envoy asked for, and the last response sent (nonce, contents)."""

    def __init__(self, sid: str, log: WireLog):
        self.id, self.log = sid, log
        self.nonces = itertools.count(1)
        self.subs: dict[str, dict] = {}

    def on_request(self, req, snapshot: Snapshot):
        short = SHORT.get(req.type_url, req.type_url)
        sub = self.subs.get(short)
        wanted = sorted(req.resource_names)
        node = f' node="{req.node.id}"' if req.HasField("node") else ""
        line = (f'{self.id} <- {short} DiscoveryRequest version_info="{req.version_info}" '
                f'response_nonce="{req.response_nonce}" resource_names={names(wanted)}{node}')  # fmt: skip
        if short not in TYPES:
            verdict, respond = "unknown type, ignored", False
        elif sub is None:
            verdict, respond = "new subscription", True
            sub = self.subs[short] = {"names": wanted, "nonce": None, "sent": None}
        elif req.HasField("error_detail"):
            verdict, respond = "NACK " + error_text(req.error_detail), False
        elif req.response_nonce != sub["nonce"]:
            verdict, respond = f'stale nonce (last sent "{sub["nonce"]}"), ignored', False
        elif wanted != sub["names"]:
            verdict, respond = "ACK, resource_names changed", True
        elif req.version_info != snapshot.version:
            # The same nonce again, from a new watch (an updated cluster asks for its endpoints
            # anew): the client holds an older version than the snapshot's, so answer.
            verdict, respond = f"request for an older version than {snapshot.version}, answered", True
        else:
            verdict, respond = "ACK", False
        self.log.write(f"{line} => {verdict}")
        if respond:
            sub["names"] = wanted
            yield self.respond(short, sub, snapshot)

    def on_push(self, snapshot: Snapshot):
        for short, sub in self.subs.items():
            if self.contents(short, sub, snapshot) != sub["sent"]:
                yield self.respond(short, sub, snapshot)

    def contents(self, short, sub, snapshot):
        chosen = snapshot.select(short, sub["names"], wildcard=not sub["names"])
        return {n: h for n, (_, h) in chosen.items()}

    def respond(self, short, sub, snapshot):
        chosen = snapshot.select(short, sub["names"], wildcard=not sub["names"])
        nonce = str(next(self.nonces))
        sub["nonce"], sub["sent"] = nonce, {n: h for n, (_, h) in chosen.items()}
        self.log.write(f'{self.id} -> {short} DiscoveryResponse version_info="{snapshot.version}" '
                       f'nonce="{nonce}" resources={names(chosen)}')  # fmt: skip
        return discovery_pb2.DiscoveryResponse(
            version_info=snapshot.version, type_url=TYPES[short][0], nonce=nonce,
            resources=[any_ for any_, _ in chosen.values()],
        )  # fmt: skip


# -- delta ------------------------------------------------------------------------------------------------


class DeltaStream:
    """Per type: wildcard or named subscription, the versions Envoy has acknowledged
    (``known``, seeded from initial_resource_versions), and the response awaiting its ACK."""

    def __init__(self, sid: str, log: WireLog):
        self.id, self.log = sid, log
        self.nonces = itertools.count(1)
        self.subs: dict[str, dict] = {}

    def on_request(self, req, snapshot: Snapshot):
        short = SHORT.get(req.type_url, req.type_url)
        sub = self.subs.get(short)
        initial = dict(sorted(req.initial_resource_versions.items()))
        node = f' node="{req.node.id}"' if req.HasField("node") else ""
        line = (f"{self.id} <- {short} DeltaDiscoveryRequest "
                f"resource_names_subscribe={names(sorted(req.resource_names_subscribe))} "
                + (f"resource_names_unsubscribe={names(sorted(req.resource_names_unsubscribe))} "
                   if req.resource_names_unsubscribe else "")
                + "initial_resource_versions={" + ",".join(f"{k}:{v}" for k, v in initial.items()) + "} "
                f'response_nonce="{req.response_nonce}"{node}')  # fmt: skip
        if short not in TYPES:
            self.log.write(f"{line} => unknown type, ignored")
            return
        respond = False
        if sub is None:
            # An empty first subscribe list is the "legacy wildcard": everything of this type.
            sub = self.subs[short] = {"wildcard": not req.resource_names_subscribe, "names": set(),
                                      "known": initial, "pending": None}  # fmt: skip
            verdict, respond = "new subscription" + (" (wildcard)" if sub["wildcard"] else ""), True
        elif req.HasField("error_detail"):
            sub["pending"] = None  # Envoy kept what it had: "known" stays as it was
            verdict = "NACK " + error_text(req.error_detail)
        elif req.response_nonce:
            if sub["pending"] and req.response_nonce == sub["pending"][0]:
                sub["known"].update(sub["pending"][1])
                sub["known"] = {n: v for n, v in sub["known"].items() if v is not None}
                sub["pending"] = None
                verdict = "ACK"
            else:
                verdict = "stale nonce, ignored"
        else:
            verdict = "subscription change"
        added = set(req.resource_names_subscribe) - {"*"} - sub["names"]
        sub["names"] |= set(req.resource_names_subscribe) - {"*"}
        sub["names"] -= set(req.resource_names_unsubscribe)
        if "*" in req.resource_names_subscribe:
            sub["wildcard"] = True
        if added and verdict != "new subscription":
            verdict, respond = verdict + f", subscribes {names(sorted(added))}", True
        self.log.write(f"{line} => {verdict}")
        if respond:
            yield self.respond(short, sub, snapshot, always=True)

    def on_push(self, snapshot: Snapshot):
        for short, sub in self.subs.items():
            response = self.respond(short, sub, snapshot, always=False)
            if response is not None:
                yield response

    def respond(self, short, sub, snapshot, always: bool):
        """What Envoy lacks: resources whose version differs from the one it acknowledged, and
        names it holds that the snapshot no longer has. An answer to a new subscription is sent
        even when empty (Envoy waits for one before it finishes initializing)."""
        chosen = snapshot.select(short, sub["names"], sub["wildcard"])
        changed = {n: v for n, v in chosen.items() if sub["known"].get(n) != v[1]}
        covered = (lambda n: True) if sub["wildcard"] else (lambda n: n in sub["names"])
        removed = sorted(n for n in sub["known"] if n not in chosen and covered(n))
        if not (changed or removed or always):
            return None
        nonce = str(next(self.nonces))
        sub["pending"] = (nonce, {**{n: h for n, (_, h) in changed.items()}, **dict.fromkeys(removed)})
        self.log.write(f'{self.id} -> {short} DeltaDiscoveryResponse system_version_info="{snapshot.version}" '
                       f'nonce="{nonce}" resources={names(f"{n}@{h}" for n, (_, h) in changed.items())} '
                       f"removed_resources={names(removed)}")  # fmt: skip
        return discovery_pb2.DeltaDiscoveryResponse(
            system_version_info=snapshot.version, type_url=TYPES[short][0], nonce=nonce,
            resources=[discovery_pb2.Resource(name=n, version=h, resource=a) for n, (a, h) in changed.items()],
            removed_resources=removed,
        )  # fmt: skip


# -- the gRPC service -----------------------------------------------------------------------------------------


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, cp: ControlPlane):
        self.cp = cp

    def StreamAggregatedResources(self, request_iterator, context):  # noqa: N802 - gRPC's name
        sid = f"s{next(self.cp.stream_ids)}"
        self.cp.log.write(f"{sid} opened: StreamAggregatedResources (state of the world)")
        return self.cp.serve_stream(SotwStream(sid, self.cp.log), request_iterator)

    def DeltaAggregatedResources(self, request_iterator, context):  # noqa: N802
        sid = f"s{next(self.cp.stream_ids)}"
        self.cp.log.write(f"{sid} opened: DeltaAggregatedResources (delta)")
        return self.cp.serve_stream(DeltaStream(sid, self.cp.log), request_iterator)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--log", required=True, help="the wire log, one line per message")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", help="listen on this unix socket path")
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT")
    args = parser.parse_args()

    cp = ControlPlane(args.snapshot, WireLog(args.log))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(AggregatedDiscovery(cp), server)
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)  # left by an earlier run
        server.add_insecure_port(f"unix:{args.unix}")
    else:
        server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"xds_server: serving ADS on {args.unix or f'127.0.0.1:{args.port}'}", flush=True)
    threading.Thread(target=cp.watch, daemon=True).start()
    server.wait_for_termination()


if __name__ == "__main__":
    main()
