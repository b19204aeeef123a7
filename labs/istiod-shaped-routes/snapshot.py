"""The xDS resources istiod 1.30.3 would send the sidecar of productpage (namespace default) in a
small mesh, written out as a snapshot for labs/common/xds_server.py.

    python3 snapshot.py --version v1 [--knob-rules] [--protocol-detection-timeout 1s]
                        [--egress ./ratings.default.svc.cluster.local]

This is not istiod: it builds the output for one fixed mesh, by hand, field by field. Each builder
below is named after the istiod function (Istio 1.30.3, pilot/pkg/networking/core/ unless a path is
given) that produces the real resource, and each comment names where a value comes from. Fields
istiod sets that do not change what this lab shows are left out, and the comments say which
(Istio's own filters such as metadata exchange, stats and ALPN; mTLS; tracing; telemetry metadata).
The output is JSON (the snapshot format xds_server.py reads); the comments live here.

The mesh (the Kubernetes objects istiod would read):
- Services in namespace default, each with a ClusterIP stand-in in 10.96.0.0/16:
  reviews 10.96.0.20, ratings 10.96.0.30 and details 10.96.0.10, port 9080 named "http";
  mail 10.96.0.40, port 2525 with no name and no appProtocol (so its protocol is sniffed).
- Endpoints (Pod IPs, in the lab's backend pod): reviews v1 10.48.0.2, reviews v2 10.48.0.3,
  ratings 10.48.0.4, mail 10.48.0.5, details 10.48.0.6 (a Pod whose application is down);
  with --knob-rules also reviews v3 10.48.0.7 (a new version that should only see mirrored traffic).
- DestinationRule reviews: subsets v1 (version: v1) and v2 (version: v2); with --knob-rules also v3.
- VirtualService reviews (the YAML is in the page routes-and-virtualservice.md):
  http[0] name jason: headers end-user exact jason -> subset v2, timeout 500ms,
          retries {attempts: 2, retryOn: 5xx};
  http[1] name split: uri prefix /reviews -> v1 weight 80, v2 weight 20;
  with --knob-rules four more rules after these (the YAML is in the page too):
  http[2] name mirror: uri prefix /mirror -> v1, mirror reviews subset v3 (no mirrorPercentage);
  http[3] name fault: uri prefix /fault -> v1, fault.delay fixedDelay 100ms and fault.abort httpStatus 503,
          both percentage 100;
  http[4] name rewrite: uri prefix /v1/reviews -> v1, rewrite.uri /reviews;
  http[5] name redirect: uri prefix /old/reviews, redirect.uri /reviews (no redirectCode).
- Optionally a Sidecar in namespace default whose single egress listener imports only the
  hosts given with --egress (namespace/host, "." for the Sidecar's own namespace).
"""

from __future__ import annotations

import argparse
import json
import sys

NS = "default"
DNS_DOMAIN = f"{NS}.svc.cluster.local"  # model.Proxy.DNSDomain of a Pod in namespace default
UINT32_MAX = 4294967295

# name -> (ClusterIP, port, port name, {subset: [endpoint IPs]} with "" = all endpoints)
SERVICES = {
    "reviews": ("10.96.0.20", 9080, "http", {"": ["10.48.0.2", "10.48.0.3"], "v1": ["10.48.0.2"], "v2": ["10.48.0.3"]}),
    "ratings": ("10.96.0.30", 9080, "http", {"": ["10.48.0.4"]}),
    "details": ("10.96.0.10", 9080, "http", {"": ["10.48.0.6"]}),
    "mail": ("10.96.0.40", 2525, "", {"": ["10.48.0.5"]}),
}
# --knob-rules: the reviews Pod of version v3 (and the DestinationRule's subset v3) join the mesh.
REVIEWS_V3 = "10.48.0.7"
VS_REVIEWS = "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"

ADS = {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}
T = "type.googleapis.com/envoy."


def fqdn(name: str) -> str:
    return f"{name}.{NS}.svc.cluster.local"


def protocol(port_name: str) -> str:
    """kube.ConvertProtocol (pkg/config/kube/conversion.go): the port name's prefix (or appProtocol)
    picks the protocol; an empty or unknown one is "UnsupportedProtocol" and its traffic is sniffed,
    except on the well-known ports 25, 53, 3306 and 27017, which default to TCP."""
    return {"http": "HTTP", "tcp": "TCP"}.get(port_name.split("-")[0], "Auto")


def cluster_name(host: str, port: int, subset: str = "") -> str:
    """model.BuildSubsetKey (pilot/pkg/model/service.go): outbound|<port>|<subset>|<FQDN>."""
    return f"outbound|{port}|{subset}|{host}"


# -- filters ---------------------------------------------------------------------------------------


def tcp_proxy(cluster: str, stat_prefix: str | None = None) -> dict:
    # wellknown.TCPProxy; istiod puts its istio.stats network filter before it (buildMetricsNetworkFilters): left out.
    return {"name": "envoy.filters.network.tcp_proxy",
            "typed_config": {"@type": T + "extensions.filters.network.tcp_proxy.v3.TcpProxy",
                             "stat_prefix": stat_prefix or cluster, "cluster": cluster}}


def http_connection_manager(stat_prefix: str, rds: str) -> dict:
    """ListenerBuilder.buildHTTPConnectionManager (listener_builder.go) with the options of
    buildSidecarOutboundHTTPListenerOpts (listener.go)."""
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": T + "extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            # buildListenerFromEntry: "outbound_" + listener name, then util.DelimitedStatsPrefix appends ";",
            # which Istio's stats tag rules strip again; left out here.
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",  # always AUTO except HTTP/3 gateways
            # The route configuration comes by RDS over ADS; the name is decided by buildSidecarOutboundHTTPListenerOpts.
            "rds": {"route_config_name": rds, "config_source": ADS},
            "use_remote_address": False,  # features.UseRemoteAddress (PILOT_SIDECAR_USE_REMOTE_ADDRESS) is false
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "stream_idle_timeout": "0s",
            # MeshConfig pathNormalization unset = DEFAULT: normalize, keep escaped slashes.
            "normalize_path": True,
            "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
            "http_filters": [
                # istiod puts metadata exchange, authn/authz (when policies exist), istio.alpn and the Telemetry
                # (istio.stats) filters among these; they are Istio's own filters and are left out.
                {"name": "envoy.filters.http.grpc_stats",  # xdsfilters.GrpcStats
                 "typed_config": {"@type": T + "extensions.filters.http.grpc_stats.v3.FilterConfig",
                                  "emit_filter_state": True, "stats_for_all_methods": False}},
                # xdsfilters.Fault and xdsfilters.Cors: always present, configured per route (typed_per_filter_config).
                {"name": "envoy.filters.http.fault",
                 "typed_config": {"@type": T + "extensions.filters.http.fault.v3.HTTPFault"}},
                {"name": "envoy.filters.http.cors",
                 "typed_config": {"@type": T + "extensions.filters.http.cors.v3.Cors"}},
                # xdsfilters.BuildRouterFilter: the router is always last.
                {"name": "envoy.filters.http.router",
                 "typed_config": {"@type": T + "extensions.filters.http.router.v3.Router"}},
            ],
            # accessLogBuilder.setHTTPAccessLog writes this only when MeshConfig accessLogFile (or Telemetry) asks
            # for it; the default install has none. The lab's format is ours: the fields the page reads.
            "access_log": [{
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": T + "extensions.access_loggers.file.v3.FileAccessLog",
                    "path": "access.log",
                    "log_format": {"text_format_source": {"inline_string":
                        "\"%REQ(:METHOD)% %REQ(:PATH)%\" authority=%REQ(:AUTHORITY)% %RESPONSE_CODE% "
                        "flags=%RESPONSE_FLAGS% details=%RESPONSE_CODE_DETAILS% route=%ROUTE_NAME% "
                        "cluster=%UPSTREAM_CLUSTER% upstream=%UPSTREAM_HOST% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT%\n"}},
                },
            }],
        },
    }


HTTP_INSPECTOR = {"name": "envoy.filters.listener.http_inspector",  # xdsfilters.HTTPInspector
                  "typed_config": {"@type": T + "extensions.filters.listener.http_inspector.v3.HttpInspector"}}


# -- LDS -------------------------------------------------------------------------------------------


def build_listener_from_entry(bind: str, port: int, chains: list[dict], default_chain: dict, detection: str) -> dict:
    """buildListenerFromEntry (listener.go): one outbound listener per (bind address, port)."""
    return {
        "name": f"{bind}_{port}",  # getListenerName (gateway.go): <bind>_<port>
        "address": {"socket_address": {"address": bind, "port_value": port}},
        "traffic_direction": "OUTBOUND",
        # Not a socket of its own: virtualOutbound hands it the connections whose original destination
        # matches (see original-destination.md). Only interception mode NONE, captureMode NONE or a
        # unix socket bind would make it bind.
        "bind_to_port": False,
        "continue_on_listener_filters_timeout": True,
        # A chain with application_protocols needs the HTTP inspector; then the listener filter timeout
        # is MeshConfig protocolDetectionTimeout (default 0s, pkg/config/mesh/mesh.go), else 0s.
        "listener_filters": [HTTP_INSPECTOR],
        "listener_filters_timeout": detection,
        "filter_chains": chains,
        "default_filter_chain": default_chain,
    }


def http_chain(stat_prefix: str, rds: str) -> dict:
    # buildSidecarOutboundListener adds plaintextHTTPALPNs (http/1.1, h2c; http/1.0 too with PILOT_HTTP10)
    # and the raw_buffer transport: the values the HTTP inspector sets for plain-text HTTP.
    return {"filter_chain_match": {"transport_protocol": "raw_buffer", "application_protocols": ["http/1.1", "h2c"]},
            "filters": [http_connection_manager(stat_prefix, rds)]}


def listeners(services: dict, detection: str) -> list[dict]:
    """ListenerBuilder.buildSidecarOutboundListeners (listener.go) -> buildSidecarOutboundListener per
    service port, then ListenerBuilder.buildVirtualOutboundListener (listener_builder.go)."""
    out = []
    http_ports = sorted({port for _, (_, port, name, _) in services.items() if protocol(name) == "HTTP"})
    for port in http_ports:
        # HTTP: every HTTP service on this port shares one listener on the wildcard address (listenerKey
        # {0.0.0.0, port}); the later ones "exit early". The shared route configuration is named after the port.
        # No chain matches everything, so buildListenerFromEntry adds the PassthroughFilterChain as the
        # default chain: non-HTTP bytes on an HTTP port go to PassthroughCluster (buildOutboundCatchAllNetworkFiltersOnly).
        out.append(build_listener_from_entry(
            "0.0.0.0", port, [http_chain(f"outbound_0.0.0.0_{port}", str(port))],
            {"filter_chain_match": {}, "name": "PassthroughFilterChain", "filters": [tcp_proxy("PassthroughCluster")]},
            detection))
    for name, (vip, port, port_name, _) in sorted(services.items()):
        if protocol(port_name) != "Auto":
            continue
        # Auto (sniffed): a listener on the service's ClusterIP. buildSidecarOutboundTCPListenerOpts gives a TCP
        # chain that matches everything, so buildListenerFromEntry makes it the default chain; the HTTP chain
        # routes by a route configuration of this service alone, named "<FQDN>:<port>".
        out.append(build_listener_from_entry(
            vip, port, [http_chain(f"outbound_{vip}_{port}", f"{fqdn(name)}:{port}")],
            {"filters": [tcp_proxy(cluster_name(fqdn(name), port))]}, detection))
    out.append({
        # buildVirtualOutboundListener: model.VirtualOutboundListenerName on MeshConfig proxyListenPort (15001).
        "name": "virtualOutbound",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 15001}},
        "use_original_dst": True,
        "traffic_direction": "OUTBOUND",
        # buildOutboundCatchAllNetworkFilterChains: the blackhole chain for 15001 itself, then the catch-all.
        "filter_chains": [
            {"name": "virtualOutbound-blackhole", "filter_chain_match": {"destination_port": 15001},
             "filters": [tcp_proxy("BlackHoleCluster")]},
            {"name": "virtualOutbound-catchall-tcp", "filters": [tcp_proxy("PassthroughCluster")]},
        ],
    })
    # istiod also sends virtualInbound (ListenerBuilder.inboundVirtualListener) with the chains for
    # productpage's own port; no connection enters the client pod in this lab, so it is left out.
    return out


# -- RDS -------------------------------------------------------------------------------------------


def retry_policy(num_retries: int = 2, retry_on: str | None = None) -> dict:
    """retry.ConvertPolicy (route/retry/retry.go). With no HTTPRetry (and no MeshConfig
    defaultHttpRetryPolicy) it returns retry.DefaultPolicy: 2 retries on connect-failure,
    refused-stream, unavailable, cancelled and retriable-status-codes with no status code listed, the
    previous_hosts predicate and 5 host selection attempts. A user retryOn replaces the list (status
    codes in it become retriable_status_codes); attempts 0 returns no policy at all."""
    return {
        "retry_on": retry_on or "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": num_retries,
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",  # xdsfilters.RetryPreviousHosts
                                  "typed_config": {"@type": T + "extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": 5,
    }


def default_route(host: str, port: int) -> dict:
    """route.BuildDefaultHTTPOutboundRoute (route/route.go): a service with no VirtualService."""
    return {
        "name": "default",  # route.DefaultRouteName
        "match": {"prefix": "/"},
        # route.setTimeout with no VirtualService timeout: 0s (no timeout, not Envoy's 15 s), and
        # max_grpc_timeout 0s so that a gRPC client's grpc-timeout header sets the deadline.
        "route": {"cluster": cluster_name(host, port), "timeout": "0s", "max_grpc_timeout": "0s",
                  "retry_policy": retry_policy()},
        "decorator": {"operation": f"{host}:{port}/*"},  # telemetry.TraceOperation
    }


def reviews_routes() -> list[dict]:
    """route.BuildHTTPRoutesForVirtualService -> route.TranslateRoute, one route per http[] match,
    in order; the VirtualService has no catch-all, so nothing stops the translation early and nothing
    is added after the last route."""
    host, port = fqdn("reviews"), 9080
    meta = {"filter_metadata": {"istio": {"config": VS_REVIEWS}}}  # util.BuildConfigInfoMetadata
    return [{
        "name": "jason",  # HTTPRoute.name (a match name would be appended after a dot)
        # route.TranslateRouteMatch: no uri, so prefix "/"; headers.end-user.exact -> HeaderMatcher string_match
        # exact (route.translateHeaderMatch, util.ConvertToEnvoyMatch); case_sensitive = !ignoreUriCase.
        "match": {"prefix": "/", "case_sensitive": True,
                  "headers": [{"name": "end-user", "string_match": {"exact": "jason"}}]},
        "metadata": meta,
        # route.applyHTTPRouteDestination: one destination -> cluster (route.GetDestinationCluster);
        # timeout 500ms -> timeout and max_grpc_timeout (route.setTimeout); retries -> retry.ConvertPolicy.
        "route": {"cluster": cluster_name(host, port, "v2"), "timeout": "0.500s", "max_grpc_timeout": "0.500s",
                  "retry_policy": retry_policy(2, "5xx")},
        "decorator": {"operation": f"{host}:{port}/*"},  # route.GetRouteOperation: one cluster -> host:port/path
    }, {
        "name": "split",
        "match": {"prefix": "/reviews", "case_sensitive": True},  # uri.prefix -> prefix (sidecars: no path_separated_prefix)
        "metadata": meta,
        # Several destinations -> weighted_clusters in VirtualService order, weight 0 ones dropped; no header_name,
        # so Envoy draws from the stream's random id. No timeout and no retries in the VirtualService: 0s and
        # retry.DefaultPolicy, exactly as for a service without one.
        "route": {"weighted_clusters": {"clusters": [{"name": cluster_name(host, port, "v1"), "weight": 80},
                                                     {"name": cluster_name(host, port, "v2"), "weight": 20}]},
                  "timeout": "0s", "max_grpc_timeout": "0s", "retry_policy": retry_policy()},
        "decorator": {"operation": f"reviews:{port}/reviews*"},  # route.GetRouteOperation: <VS name>:<port>/<path>
    }]


def knob_routes() -> list[dict]:
    """The four rules --knob-rules appends to the reviews VirtualService, translated like the two above
    by route.TranslateRoute (pilot/pkg/networking/core/route/route.go). Each comment names the
    function that writes the field; the rules have no timeout and no retries, so every forwarding one
    gets timeout 0s and retry.DefaultPolicy like split."""
    host, port = fqdn("reviews"), 9080
    meta = {"filter_metadata": {"istio": {"config": VS_REVIEWS}}}
    v1 = cluster_name(host, port, "v1")

    def forward(**extra) -> dict:
        # applyHTTPRouteDestination: setTimeout, then rewrite and mirror, then one destination
        # (processDestination -> GetDestinationCluster), then retry.ConvertPolicy.
        return {"cluster": v1, "timeout": "0s", "max_grpc_timeout": "0s", "retry_policy": retry_policy(), **extra}

    return [{
        "name": "mirror",
        "match": {"prefix": "/mirror", "case_sensitive": True},
        "metadata": meta,
        # applyHTTPRouteDestination: mirror -> route.TranslateRequestMirrorPolicy on the cluster of the mirror
        # destination (GetDestinationCluster: outbound|9080|v3|...). route.MirrorPercent: no mirrorPercentage
        # (nor the deprecated mirrorPercent) = 100 %, written as a RuntimeFractionalPercent with no runtime key.
        # trace_sampled false; disable_shadow_host_suffix_append = features.DisableShadowHostSuffix
        # (DISABLE_SHADOW_HOST_SUFFIX, default true): the copy keeps the Host "reviews:9080", no "-shadow".
        "route": forward(request_mirror_policies=[{
            "cluster": cluster_name(host, port, "v3"),
            "runtime_fraction": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "trace_sampled": False, "disable_shadow_host_suffix_append": True}]),
        "decorator": {"operation": f"{host}:{port}/mirror*"},  # GetRouteOperation: one cluster -> host:port/prefix*
    }, {
        "name": "fault",
        "match": {"prefix": "/fault", "case_sensitive": True},
        "metadata": meta,
        "route": forward(),
        "decorator": {"operation": f"{host}:{port}/fault*"},
        # TranslateRoute: fault -> typed_per_filter_config under wellknown.Fault, the HTTPFault of route.TranslateFault.
        # The HCM's fault filter (empty config, above) then uses this route's settings. percentage {value: 100}
        # -> translatePercentToFractionalPercent: value x 10000 per MILLION. (With no percentage the delay gets the
        # deprecated integer percent, 0, and the abort no percentage at all, which Envoy reads as 0 %: nothing is
        # injected.) fixedDelay -> fixed_delay; an exponentialDelay is dropped with a warning.
        "typed_per_filter_config": {"envoy.filters.http.fault": {
            "@type": T + "extensions.filters.http.fault.v3.HTTPFault",
            "delay": {"fixed_delay": "0.100s", "percentage": {"numerator": 1000000, "denominator": "MILLION"}},
            "abort": {"http_status": 503, "percentage": {"numerator": 1000000, "denominator": "MILLION"}}}},
    }, {
        "name": "rewrite",
        "match": {"prefix": "/v1/reviews", "case_sensitive": True},
        "metadata": meta,
        # applyHTTPRouteDestination: rewrite.uri -> prefix_rewrite (whatever the match was: exact and regex
        # matches get a prefix rewrite too); uriRegexRewrite would be regex_rewrite. append_x_forwarded_host
        # = ProxyHeaders.XForwardedHost (util.GetProxyHeaders), false by default, so it is left out.
        "route": forward(prefix_rewrite="/reviews"),
        "decorator": {"operation": f"{host}:{port}/v1/reviews*"},
    }, {
        "name": "redirect",
        "match": {"prefix": "/old/reviews", "case_sensitive": True},
        "metadata": meta,
        # TranslateRoute: redirect -> route.ApplyRedirect instead of applyHTTPRouteDestination, so no cluster, no
        # timeout, no retry policy. redirect.uri -> path_redirect (the whole path; a sidecar's VirtualService has
        # no %PREFIX()% form, that is Gateway API only); no authority, scheme or port -> the request's own;
        # redirectCode 0 (unset) or 301 -> MOVED_PERMANENTLY.
        "redirect": {"path_redirect": "/reviews", "response_code": "MOVED_PERMANENTLY"},
        # GetRouteOperation: no single cluster -> <VirtualService name>:<port>/<prefix>*
        "decorator": {"operation": f"reviews:{port}/old/reviews*"},
    }]


def virtual_host_domains(name: str, vip: str) -> list[str]:
    """generateVirtualHostDomains (httproute.go) for a sidecar in the service's own namespace. With
    SidecarIgnorePort (every sidecar but proxyless gRPC) no "host:port" variants are made, and the
    route configuration sets ignore_port_in_host_matching instead. GenerateAltVirtualHosts adds the
    absolute FQDN (PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, default true) and the short names this
    namespace can use (another namespace would get reviews.default and reviews.default.svc, not reviews)."""
    host = fqdn(name)
    return [host, host + ".", name, f"{name}.{NS}.svc", f"{name}.{NS}", vip]


def route_configurations(services: dict, vs_visible: bool, knobs: bool = False) -> list[dict]:
    """ConfigGeneratorImpl.buildSidecarOutboundHTTPRouteConfig (httproute.go), for each route name the
    listeners ask for; virtual hosts from BuildSidecarOutboundVirtualHosts."""
    out = []
    for port in sorted({port for _, (_, port, name, _) in services.items() if protocol(name) == "HTTP"}):
        vhosts = []
        for name, (vip, svc_port, port_name, _) in sorted(services.items()):
            if svc_port != port:
                continue
            host = fqdn(name)
            # route.BuildSidecarVirtualHostWrapper: services with a VirtualService get its routes, the others
            # route.buildSidecarVirtualHostForService (one default route).
            routes = reviews_routes() if name == "reviews" and vs_visible else [default_route(host, port)]
            if name == "reviews" and vs_visible and knobs:
                routes += knob_routes()
            vhosts.append({"name": f"{host}:{port}",  # util.DomainName(hostname, port)
                           "domains": virtual_host_domains(name, vip), "routes": routes,
                           # ProxyHeaders.IncludeRequestAttemptCount (util.GetProxyHeaders), default true:
                           # Envoy sends x-envoy-attempt-count upstream.
                           "include_request_attempt_count": True})
        # util.SortVirtualHosts by name, then buildCatchAllVirtualHost: ALLOW_ANY (the MeshConfig default)
        # -> "allow_any" to PassthroughCluster with no timeout; REGISTRY_ONLY would be "block_all", a 502.
        vhosts.sort(key=lambda v: v["name"])
        vhosts.append({"name": "allow_any", "domains": ["*"], "include_request_attempt_count": True,
                       "routes": [{"name": "allow_any", "match": {"prefix": "/"},
                                   "route": {"cluster": "PassthroughCluster", "timeout": "0s", "max_grpc_timeout": "0s"}}]})
        out.append({"name": str(port), "virtual_hosts": vhosts, "validate_clusters": False,
                    "max_direct_response_body_size_bytes": 1048576,  # route.DefaultMaxDirectResponseBodySizeBytes
                    "ignore_port_in_host_matching": True})
    for name, (vip, port, port_name, _) in sorted(services.items()):
        if protocol(port_name) != "Auto":
            continue
        host = fqdn(name)
        # A sniffed service's own route configuration ("<FQDN>:<port>", extractListenerPort sees a sniffed name):
        # getVirtualHostsForSniffedServicePort keeps only this service's virtual host and sets its domains to "*";
        # no catch-all virtual host is appended.
        out.append({"name": f"{host}:{port}", "validate_clusters": False,
                    "max_direct_response_body_size_bytes": 1048576, "ignore_port_in_host_matching": True,
                    "virtual_hosts": [{"name": f"{host}:{port}", "domains": ["*"], "routes": [default_route(host, port)],
                                       "include_request_attempt_count": True}]})
    return out


# -- CDS and EDS -----------------------------------------------------------------------------------


def eds_cluster(name: str) -> dict:
    """ConfigGeneratorImpl.buildOutboundClusters (cluster.go) -> ClusterBuilder.buildCluster
    (cluster_builder.go), subsets by ClusterBuilder.buildSubsetCluster from the DestinationRule."""
    return {
        "name": name,
        "type": "EDS",
        "eds_cluster_config": {"service_name": name, "eds_config": ADS},  # maybeApplyEdsConfig
        "connect_timeout": "10s",  # MeshConfig connectTimeout, default 10s
        "lb_policy": "LEAST_REQUEST",  # defaultLBAlgorithm (cluster_traffic_policy.go)
        # getDefaultCircuitBreakerThresholds: every threshold at the uint32 maximum (Envoy's own: 1024, retries 3).
        "circuit_breakers": {"thresholds": [{"max_connections": UINT32_MAX, "max_pending_requests": UINT32_MAX,
                                             "max_requests": UINT32_MAX, "max_retries": UINT32_MAX}]},
        "common_lb_config": {},
        # Left out: alt_stat_name "<name>;", telemetry metadata, HTTP protocol options and the auto-mTLS
        # transport_socket_matches (the lab's endpoints have no sidecar, so plain text is what Envoy would pick).
    }


def clusters(services: dict) -> tuple[list[dict], list[dict]]:
    cds, eds = [], []
    for name, (_, port, _, subsets) in sorted(services.items()):
        for subset, ips in subsets.items():
            cname = cluster_name(fqdn(name), port, subset)
            cds.append(eds_cluster(cname))
            # EndpointBuilder.BuildClusterLoadAssignment (pilot/pkg/xds/endpoints/endpoint_builder.go): endpoints
            # of the subset's labels only, weight 1 each (buildEnvoyLbEndpoint), locality weight = their sum.
            eds.append({"cluster_name": cname, "endpoints": [{
                "locality": {}, "load_balancing_weight": len(ips),
                "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": ip, "port_value": port}}},
                                  "health_status": "HEALTHY", "load_balancing_weight": 1} for ip in ips]}]})
    # ClusterBuilder.buildBlackHoleCluster and buildDefaultPassthroughCluster (cluster_builder.go).
    cds.append({"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s", "lb_policy": "ROUND_ROBIN"})
    cds.append({"name": "PassthroughCluster", "type": "ORIGINAL_DST", "connect_timeout": "10s",
                "lb_policy": "CLUSTER_PROVIDED",
                "circuit_breakers": {"thresholds": [{"max_connections": UINT32_MAX, "max_pending_requests": UINT32_MAX,
                                                     "max_requests": UINT32_MAX, "max_retries": UINT32_MAX}]}})
    return cds, eds


# -- the Sidecar resource --------------------------------------------------------------------------


def sidecar_scope(egress: list[str]) -> tuple[dict, bool]:
    """model.convertIstioListenerToWrapper (pilot/pkg/model/sidecar.go): an egress listener keeps the
    services its hosts name (IstioEgressListenerWrapper.selectServices) and the VirtualServices whose
    hosts match (model.SelectVirtualServices). No Sidecar = one egress listener with hosts */*."""
    if not egress:
        return dict(SERVICES), True
    wanted = set()
    for item in egress:
        ns, _, host = item.partition("/")
        ns = NS if ns == "." else ns
        wanted.update(name for name in SERVICES if ns in (NS, "*") and host in ("*", fqdn(name)))
    return {name: SERVICES[name] for name in wanted}, "reviews" in wanted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True)
    parser.add_argument("--protocol-detection-timeout", default="0s", help="MeshConfig protocolDetectionTimeout")
    parser.add_argument("--egress", default="", help="comma-separated hosts of a Sidecar egress listener")
    parser.add_argument("--knob-rules", action="store_true",
                        help="reviews v3 joins, and the VirtualService gets the mirror, fault, rewrite and redirect rules")
    args = parser.parse_args()
    services, vs_visible = sidecar_scope([h for h in args.egress.split(",") if h])
    if args.knob_rules and "reviews" in services:
        vip, port, port_name, subsets = services["reviews"]
        services["reviews"] = (vip, port, port_name, {**subsets, "": subsets[""] + [REVIEWS_V3], "v3": [REVIEWS_V3]})
    cds, eds = clusters(services)
    json.dump({"version": args.version, "listeners": listeners(services, args.protocol_detection_timeout),
               "routes": route_configurations(services, vs_visible, args.knob_rules), "clusters": cds,
               "endpoints": eds},
              sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
