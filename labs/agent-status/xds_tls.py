"""The teaching control plane (common/xds_server.py), with Envoy's TLS types registered.

    python3 xds_tls.py --snapshot snapshot.json --unix etc/istio/proxy/XDS --log wire.log

The snapshots of this lab hold a cluster whose transport socket is an UpstreamTlsContext; the
control plane parses snapshots with protobuf's json_format, which resolves an "@type" only for
message types already imported. This wrapper imports them, then runs the control plane unchanged.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "common"))

from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: E402,F401 - registers the type

import xds_server  # noqa: E402

if __name__ == "__main__":
    xds_server.main()
