"""Config examples are validated against Envoy's v3 API and Istio's v1.30.3 CRD schemas."""

from __future__ import annotations

import pytest

from insider.configcheck import ConfigError, check_block

VIRTUAL_SERVICE = """\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
      weight: 100
"""

LISTENER = """\
# envoy-type: envoy.config.listener.v3.Listener
name: demo
address:
  socket_address: {address: 0.0.0.0, port_value: 10000}
filter_chains:
- filters:
  - name: envoy.filters.network.tcp_proxy
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      stat_prefix: demo
      cluster: backend
"""


def test_valid_examples_pass():
    assert check_block(VIRTUAL_SERVICE) == "VirtualService"
    assert check_block(LISTENER) == "envoy.config.listener.v3.Listener"
    assert check_block("replicas: 3\n") is None  # plain YAML is not a config example


@pytest.mark.parametrize(
    "text, message",
    [
        (VIRTUAL_SERVICE.replace("hosts:", "hostz:"), "Additional properties are not allowed"),
        (VIRTUAL_SERVICE.replace("weight: 100", "weight: heavy"), "not of type 'integer'"),
        (VIRTUAL_SERVICE.replace("kind: VirtualService", "kind: VirtualServer"), "not an Istio resource"),
        (LISTENER.replace("stat_prefix", "stats_prefix"), "Unknown field 'stats_prefix'"),
        (LISTENER.replace("port_value: 10000", "port_value: many"), "invalid envoy.config.listener.v3.Listener"),
        (LISTENER.replace("tcp_proxy.v3.TcpProxy", "tcp_proxy.v3.TcpProxyy"), "unregistered type"),
        (LISTENER.replace("listener.v3.Listener", "listener.v3.Listenr"), "unknown Envoy message type"),
        (LISTENER.split("\n", 1)[1], "looks like Envoy configuration"),
        ("a: [1\n", "YAML does not parse"),
    ],
)
def test_invalid_examples_fail_with_a_reason(text, message):
    with pytest.raises(ConfigError, match=message):
        check_block(text)


def test_proto_field_names_with_a_digit_before_letters_are_known():
    # betterproto2 would read consecutive_5xx as consecutive_5_xx, a field that does not exist.
    check_block("# envoy-type: envoy.config.cluster.v3.Cluster\nname: c\noutlier_detection:\n  consecutive_5xx: 3\n")
    with pytest.raises(ConfigError, match="consecutive_5x"):
        check_block("# envoy-type: envoy.config.cluster.v3.Cluster\nname: c\noutlier_detection:\n  consecutive_5x: 3\n")


def test_an_invalid_example_fails_every_build_and_is_validated_once():
    """Blocks are validated after reading, remembered by content: a page that is not read again
    still has its invalid example reported, and an unchanged block is not validated again."""
    from types import SimpleNamespace
    from unittest import mock

    from insider import configcheck

    bad = LISTENER.replace("stat_prefix", "stat_prefixx")
    env = SimpleNamespace(insider_config_blocks={"ch2-envoy/a": [(12, bad)], "ch2-envoy/b": [(3, VIRTUAL_SERVICE)]})
    with mock.patch.object(configcheck.logger, "warning") as warning, \
         mock.patch.object(configcheck, "problem", wraps=configcheck.problem) as problem:  # fmt: skip
        configcheck.validate(None, env)
        configcheck.validate(None, env)  # the next build: nothing read again
    assert problem.call_count == 2  # each block once
    assert [c.kwargs["location"] for c in warning.call_args_list] == [("ch2-envoy/a", 12)] * 2
    assert "stat_prefixx" in warning.call_args_list[0].args[0]
    env.insider_config_blocks["ch2-envoy/a"] = [(12, LISTENER)]  # fixed: the old result is dropped
    configcheck.validate(None, env)
    assert len(env.insider_config_results) == 2
