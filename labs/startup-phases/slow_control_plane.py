"""A teaching control plane: serves EDS and RDS over gRPC (state of the world), and holds each
resource back until the lab releases it.

    python3 slow_control_plane.py --port 18000 --dir served

Envoy asks for resources by name; this server answers with ``<dir>/<kind>/<name>.json`` (kind
``eds``: a ClusterLoadAssignment, ``rds``: a RouteConfiguration, in protobuf JSON) as soon as
that file exists, and again whenever it changes. Until then the request simply waits, like a
control plane that has not computed the resource yet. Each request and response is logged on
stdout, one line each, in the order they happen.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import any_pb2, json_format

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.endpoint.v3 import eds_pb2_grpc
from envoy.service.route.v3 import rds_pb2_grpc

KINDS = {
    "eds": ("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", endpoint_pb2.ClusterLoadAssignment),
    "rds": ("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", route_pb2.RouteConfiguration),
}
LOCK = threading.Lock()


def log(*parts) -> None:
    with LOCK:
        print(*parts, flush=True)


class Stream:
    """One xDS stream of one kind: remembers what Envoy asked for and what it was sent."""

    versions = itertools.count(1)

    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder = kind, folder / kind
        self.type_url, self.message = KINDS[kind]
        self.requests: queue.Queue = queue.Queue()
        self.wanted: list[str] = []
        self.sent: dict[str, bytes] = {}

    def read(self, request_iterator) -> None:
        for request in request_iterator:
            self.requests.put(request)
        self.requests.put(None)

    def serve(self, request_iterator, context):
        threading.Thread(target=self.read, args=(request_iterator,), daemon=True).start()
        while context.is_active():
            try:
                request = self.requests.get(timeout=0.05)
            except queue.Empty:
                request = False
            if request is None:
                return
            if request:
                names = sorted(request.resource_names)
                if request.response_nonce:
                    what = "NACK" if request.HasField("error_detail") else "ACK"
                    log(f"{self.kind.upper()}: Envoy {what}s version {request.version_info}")
                if names != self.wanted:
                    self.wanted = names
                    log(f"{self.kind.upper()}: Envoy asks for {', '.join(names)}")
            response = self.changed()
            if response is not None:
                yield response

    def changed(self):
        """A response with every wanted resource whose file is new or changed, or None."""
        resources, names = [], []
        for name in self.wanted:
            path = self.folder / f"{name}.json"
            try:
                text = path.read_bytes()
            except FileNotFoundError:
                continue
            if self.sent.get(name) == text:
                continue
            message = json_format.Parse(text, self.message())
            packed = any_pb2.Any()
            packed.Pack(message)
            resources.append(packed)
            names.append(name)
            self.sent[name] = text
        if not resources:
            return None
        version = str(next(self.versions))
        log(f"{self.kind.upper()}: control plane sends {', '.join(names)} (version {version})")
        return discovery_pb2.DiscoveryResponse(
            version_info=version, resources=resources, type_url=self.type_url, nonce=version)


class Endpoints(eds_pb2_grpc.EndpointDiscoveryServiceServicer):
    def __init__(self, folder: Path):
        self.folder = folder

    def StreamEndpoints(self, request_iterator, context):  # noqa: N802 - gRPC's name
        yield from Stream("eds", self.folder).serve(request_iterator, context)


class Routes(rds_pb2_grpc.RouteDiscoveryServiceServicer):
    def __init__(self, folder: Path):
        self.folder = folder

    def StreamRoutes(self, request_iterator, context):  # noqa: N802 - gRPC's name
        yield from Stream("rds", self.folder).serve(request_iterator, context)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    eds_pb2_grpc.add_EndpointDiscoveryServiceServicer_to_server(Endpoints(args.dir), server)
    rds_pb2_grpc.add_RouteDiscoveryServiceServicer_to_server(Routes(args.dir), server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    log(f"control plane listening on 127.0.0.1:{args.port}, serving {args.dir}/")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
