"""Config examples are validated against Envoy's v3 API and Istio's v1.30.3 CRD schemas."""

from __future__ import annotations

import pytest
from conftest import LANGUAGES, ROOT

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


def test_yaml_blocks_are_found_in_markdown_as_the_doctree_holds_them(tmp_path):
    """The early pass finds plain fences, fences inside directives and the YAML a lab shows."""
    from insider import configcheck
    from insider.labstore import LABS

    page = "\n".join([
        "text", "", "```yaml", "a: 1", "```", "", "````{note}", "```yaml", "b: 2", "```", "````", "",
        "```{lab} event-loop", ":file: envoy.yaml", "```", "", "```json", "{}", "```",
    ])  # fmt: skip
    found = configcheck.yaml_blocks(page)
    assert found[:2] == ["a: 1\n", "b: 2\n"]
    assert found[2] == (LABS / "event-loop" / "envoy.yaml").read_text(encoding="utf-8").rstrip("\n")
    assert len(found) == 3


@pytest.mark.parametrize("language", LANGUAGES)
def test_early_validation_covers_every_block_of_the_book(site, language):
    """Every YAML block the built pages hold was found in their Markdown before reading, so a clean
    build validates none of them in the main process after reading."""
    import pickle

    from insider import configcheck

    env = pickle.loads((site / f".doctrees-html-{language}" / "environment.pickle").read_bytes())
    blocks = env.__dict__["insider_config_blocks"]
    assert sum(map(len, blocks.values())) > 30
    missed = []
    for docname, held in blocks.items():
        found = set(configcheck.yaml_blocks((ROOT / f"{docname}.md").read_text(encoding="utf-8")))
        missed += [f"{docname}.md:{line}" for line, text in held if text not in found]
    assert not missed, f"YAML blocks the early validation does not see: {missed}"


def test_early_results_are_used_and_a_failed_early_pass_changes_nothing(monkeypatch):
    from types import SimpleNamespace
    from unittest import mock

    from insider import configcheck

    bad = LISTENER.replace("stat_prefix", "stat_prefixx")
    blocks = {"ch2-envoy/a": [(12, bad)], "ch2-envoy/b": [(3, VIRTUAL_SERVICE)]}
    ready = {configcheck.result_key(bad): configcheck.problem(bad), configcheck.result_key(VIRTUAL_SERVICE): ""}
    for early in (ready, {}):  # results handed over by the early process; none (it failed)
        env = SimpleNamespace(insider_config_blocks=blocks)
        monkeypatch.setattr(configcheck, "_early_results", lambda early=early: dict(early))
        with mock.patch.object(configcheck.logger, "warning") as warning, \
             mock.patch.object(configcheck, "problem", wraps=configcheck.problem) as problem:  # fmt: skip
            configcheck.validate(None, env)
        assert problem.call_count == (0 if early else 2)
        assert [c.kwargs["location"] for c in warning.call_args_list] == [("ch2-envoy/a", 12)]
