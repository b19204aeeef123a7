"""The teaching control plane (common/xds_server.py), with one more Envoy type registered.

istiod puts a cluster's HTTP pool settings (idle_timeout, max_requests_per_connection ...) in
``typed_extension_protocol_options`` as an ``envoy.extensions.upstreams.http.v3.HttpProtocolOptions``;
the server parses snapshots with protobuf's json_format, which resolves an ``@type`` only for
message types already imported. This wrapper imports that type, then runs the server unchanged:

    python3 control_plane.py --snapshot snapshot.json --log wire.log --unix xds.sock
"""

import runpy
import sys

from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401 - registers the type

sys.argv = ["common/xds_server.py", *sys.argv[1:]]
runpy.run_path("common/xds_server.py", run_name="__main__")
