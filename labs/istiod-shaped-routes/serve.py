"""Run the teaching control plane (labs/common/xds_server.py) with the extra Envoy API types this
lab's snapshots name in "@type": json_format resolves a type only once its module is imported.

    python3 serve.py --snapshot snapshot.json --log wire.log --port 15010
"""

import sys

sys.path.insert(0, "common")

# The typed configs the snapshots use beyond the router and the HTTP connection manager.
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: E402,F401
from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: E402,F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: E402,F401
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2  # noqa: E402,F401
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2  # noqa: E402,F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: E402,F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: E402,F401

import xds_server  # noqa: E402

if __name__ == "__main__":
    xds_server.main()
