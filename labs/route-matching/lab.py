"""Route matching: which virtual host a Host header picks, which route of it wins, how a weighted
route splits requests, and a local reply passing an encoder filter on its way out.

One Envoy (one worker) and two upstreams (labs/common/upstream.py named blue and green). Listener
:8000 has virtual hosts for api.insider.test (exact), *.insider.test and *.shop.insider.test
(suffix wildcards), api.* (prefix wildcard), * and split.insider.test (weighted clusters); its
routes answer with direct responses that name the virtual host and the route. Listener :8001 keeps
the exact and prefix domains and sets ignore_port_in_host_matching. A Lua filter before the
router stamps every response. Sections: start, vhost-choice, host-port, route-order,
split-by-header, split-random, local-reply.
"""

TITLE = "Route matching: virtual host choice, first-match routes, weighted clusters"
SUMMARY_ZH = "按域名选虚拟主机、路由按顺序第一个匹配生效、加权集群的分流。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    # Without header_name the split follows each stream's random id: how many of the 200 requests
    # each cluster got differs from run to run (the lab asserts both got some and the sum is 200).
    (r"^(random: cluster\.(blue|green)\.upstream_rq_total): \d+$", r"\1: <n>"),
]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --log-level warn"
CURL = "curl -s {extra}-H 'host: {host}' {url}"


def body(lab, ns, host: str, path: str = "/", port: int = 8000, extra: str = "") -> str:
    url = f"127.0.0.1:{port}{path}"
    url = f"'{url}'" if "?" in url else url
    command = CURL.format(host=host, url=url, extra=f"{extra} " if extra else "")
    return lab.sh(command, ns=ns).output.strip()


def run(lab):
    ns = lab.pod("routes")

    with lab.section("start"):
        for name, port in (("blue", 8081), ("green", 8082)):
            lab.start(f"python3 common/upstream.py --host 127.0.0.1 --port {port} --name {name}", name=name, ns=ns,
                      ready=lab.port_open(port, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("vhost-choice"):
        expected = {
            "api.insider.test": "vhost=exact route=catch-all",     # exact beats *.insider.test and api.*
            "API.Insider.Test": "vhost=exact route=catch-all",     # hosts are compared in lower case
            "web.insider.test": "vhost=suffix",
            "a.shop.insider.test": "vhost=longer-suffix",          # the longest suffix wins
            "shop.insider.test": "vhost=suffix",                   # *.shop.insider.test needs a label before it
            "api.web.insider.test": "vhost=suffix",                # suffix wildcards before prefix wildcards
            "api.example.org": "vhost=prefix",
            "insider.test": "vhost=any",
        }
        for host, want in expected.items():
            got = body(lab, ns, host)
            lab.fact(got == want, f"Host {host} picks {want}")

    with lab.section("host-port"):
        got = body(lab, ns, "api.insider.test:8000")
        lab.fact(got == "vhost=prefix",
                 "on :8000 the port stays in the Host: api.insider.test:8000 misses the exact domain and falls to api.*")
        got = body(lab, ns, "api.insider.test:8001", port=8001)
        lab.fact(got == "vhost=exact (port ignored)",
                 "with ignore_port_in_host_matching the same Host picks the exact domain")

    with lab.section("route-order"):
        expected = [
            ("/orders", "", "route=orders-path"),
            ("/orders?page=2", "", "route=orders-path"),             # path matchers ignore the query string
            ("/orders/42", "", "route=order-by-id"),                 # never-reached, listed last, is never reached
            ("/docs/intro", "", "route=docs"),
            ("/docsy", "", "route=catch-all"),                       # path_separated_prefix needs / or the end
            ("/cart?debug", "", "route=debug-query"),
            ("/cart", "-H 'x-canary: yes'", "route=canary-header"),
            ("/orders", "-H 'x-canary: yes'", "route=orders-path"),  # the first match wins, not the most specific
        ]
        for path, extra, want in expected:
            got = body(lab, ns, "api.insider.test", path, extra=extra)
            lab.fact(got == f"vhost=exact {want}", f"{extra} {path} on api.insider.test matches {want}")

    with lab.section("split-by-header"):
        lab.sh("for i in $(seq 0 5 95); do curl -s -o /dev/null -H 'host: split.insider.test' "
               "-H \"x-insider-pick: $i\" 127.0.0.1:8000/by-header; done", ns=ns)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.(blue|green)\\.upstream_rq_total$'", ns=ns)
        blue = lab.stat(ADMIN, "cluster.blue.upstream_rq_total", ns=ns)
        green = lab.stat(ADMIN, "cluster.green.upstream_rq_total", ns=ns)
        lab.fact(blue == 5 and green == 15, "picks 0, 5, ..., 95 against weights 25/75: 5 to blue (0-20), 15 to green")

    with lab.section("split-random"):
        lab.sh("curl -s -o /dev/null -H 'host: split.insider.test' '127.0.0.1:8000/random?n=[1-200]'", ns=ns)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.(blue|green)\\.upstream_rq_total$' "
               "| sed 's/^/random: /'", ns=ns)
        blue2 = lab.stat(ADMIN, "cluster.blue.upstream_rq_total", ns=ns) - blue
        green2 = lab.stat(ADMIN, "cluster.green.upstream_rq_total", ns=ns) - green
        lab.fact(blue2 + green2 == 200, "the 200 requests to /random all went upstream")
        lab.fact(blue2 > 0 and green2 > 0, "with the stream's random id, both clusters got some of them")

    with lab.section("local-reply"):
        lab.sh("curl -s -o /dev/null -w 'status=%{http_code} x-insider-stamp=%header{x-insider-stamp}\\n' "
               "-H 'host: split.insider.test' 127.0.0.1:8000/elsewhere", ns=ns)
        lab.fact("status=404 x-insider-stamp=lua saw 404" in lab.last.output,
                 "the router's 404 (no route) passes the Lua filter's encoder: it carries the stamp")
        lab.sh("curl -s -o /dev/null -w 'status=%{http_code} x-insider-stamp=%header{x-insider-stamp}\\n' "
               "-H 'host: web.insider.test' 127.0.0.1:8000/", ns=ns)
        lab.fact("status=200 x-insider-stamp=lua saw 200" in lab.last.output,
                 "a direct response is a local reply too, and is stamped the same way")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^http\\.routes\\.(no_route|rq_direct_response|rq_total)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "http.routes.no_route", ns=ns) == 1, "one request found no route (no_route 1)")
