"""The HTTP filter manager: decoder filters in order and encoder filters in reverse, local replies
and which encoder filters see them, how HEAD and gRPC requests change a local reply, and what a
filter that buffers too much gets: 413 on the request path, 500 on the response path.

One Envoy (one worker) in front of labs/common/upstream.py. The listener's per-connection buffer
limit is 16 KiB. Filters, in order: trace-a and trace-b (Lua, each appends its letter to
x-decode-path going in and to x-encode-path going out; trace-a answers /deny itself),
whole-request and whole-response (Lua asking for the whole body; disabled in the filter list,
enabled per route on /upload and /buffered/), router. Sections: start, order, local-reply,
head-and-grpc, request-too-large, response-too-large, access-log, stats.
"""

import time

from labs.kit import LabFailure

TITLE = "The HTTP filter manager: order, local replies and buffer limits"
SUMMARY_ZH = "HTTP 过滤器的解码与编码顺序、本地响应经过编码过滤器返回、缓冲上限触发 413。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
SHOW = ("-w 'status=%{http_code} x-encode-path=%header{x-encode-path} content-type=%header{content-type} "
        "body_bytes=%{size_download}\\n'")
SHOW_BODY = SHOW.replace("-w '", "-w '\\n", 1)  # the body has no newline of its own


def wait_log(lab, lines: int, timeout: float = 5.0) -> None:
    """The access log is written on a timer (--file-flush-interval-msec 100): wait, bounded,
    until it holds `lines` lines."""
    path = lab.workdir / "access.log"
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.count("\n") >= lines:
            return
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: access.log has {text.count(chr(10))} lines, not {lines}, after {timeout} s")
        time.sleep(0.05)


def run(lab):
    ns = lab.pod("filters")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        lab.sh("head -c 1000 /dev/zero > small.bin && head -c 32768 /dev/zero > large.bin")

    with lab.section("order"):
        # /headers echoes the request headers the upstream received; -D - prints the response's.
        lab.sh("curl -s -D - 127.0.0.1:8000/api/headers | grep -E '^x-(decode|encode)-path:'", ns=ns)
        out = lab.last.output
        lab.fact("x-decode-path: a,b" in out, "decoder filters run in list order: trace-a, then trace-b")
        lab.fact("x-encode-path: b,a" in out, "encoder filters run in reverse: trace-b, then trace-a")

    with lab.section("local-reply"):
        lab.sh(f"curl -s -o /dev/null {SHOW} 127.0.0.1:8000/nowhere", ns=ns)
        lab.fact("status=404 x-encode-path=b,a" in lab.last.output,
                 "the router's 404 passes both encoder filters")
        lab.sh(f"curl -s {SHOW_BODY} 127.0.0.1:8000/deny", ns=ns)
        lab.fact("denied by trace-a" in lab.last.output and "status=403 x-encode-path=b,a" in lab.last.output,
                 "trace-a's own 403 passes trace-b's encoder too, although trace-b never saw the request")

    with lab.section("head-and-grpc"):
        lab.sh(f"curl -s -o /dev/null {SHOW} 127.0.0.1:8000/hello", ns=ns)
        lab.fact("status=200" in lab.last.output and "body_bytes=29" in lab.last.output, "GET /hello: 29 bytes")
        lab.sh(f"curl -s -I -o /dev/null {SHOW.replace('body_bytes', 'content-length=%header{content-length} body_bytes')} "
               "127.0.0.1:8000/hello", ns=ns)
        lab.fact("content-length=29 body_bytes=0" in lab.last.output,
                 "HEAD /hello: the same content-length, no body")
        lab.sh("curl -s -o /dev/null -X POST -H 'content-type: application/grpc' "
               "-w 'status=%{http_code} grpc-status=%header{grpc-status} grpc-message=%header{grpc-message} "
               "content-type=%header{content-type} body_bytes=%{size_download}\\n' 127.0.0.1:8000/deny", ns=ns)
        lab.fact("status=200 grpc-status=7 grpc-message=denied by trace-a content-type=application/grpc body_bytes=0"
                 in lab.last.output,
                 "to a gRPC request the same 403 becomes 200 with grpc-status 7 and the body as grpc-message")

    with lab.section("request-too-large"):
        lab.sh(f"curl -s -o /dev/null -H 'Expect:' --data-binary @small.bin {SHOW} 127.0.0.1:8000/upload", ns=ns)
        lab.fact("status=200" in lab.last.output, "a 1000-byte body fits the 16 KiB buffer: 200")
        lab.sh(f"curl -s -H 'Expect:' --data-binary @large.bin {SHOW_BODY} 127.0.0.1:8000/upload", ns=ns)
        lab.fact("Payload Too Large" in lab.last.output and "status=413 x-encode-path=b,a" in lab.last.output,
                 "a 32 KiB body buffered by whole-request: 413 Payload Too Large, sent through the encoder filters")

    with lab.section("response-too-large"):
        lab.sh(f"curl -s -o /dev/null {SHOW} 127.0.0.1:8000/api/big/65536", ns=ns)
        lab.fact("status=200 x-encode-path=b,a" in lab.last.output and "body_bytes=65536" in lab.last.output,
                 "a 64 KiB response that no filter buffers streams through: 200")
        lab.sh(f"curl -s {SHOW_BODY} 127.0.0.1:8000/buffered/big/65536", ns=ns)
        lab.fact("Internal Server Error" in lab.last.output and "status=500 x-encode-path= " in lab.last.output,
                 "the same response buffered by whole-response: 500, sent straight to the codec, no encoder stamps")

    with lab.section("access-log"):
        wait_log(lab, 10)
        lab.sh("cat access.log")
        lines = lab.last.output.splitlines()
        lab.fact(any(line == "/nowhere code=404 decode=a,b encode=b,a flags=NR details=route_not_found owner=envoy.filters.http.router"
                     for line in lines), "the 404: both decoders ran before the router answered, and the router owns the reply")
        lab.fact(any(line == "/deny code=403 decode=a encode=b,a flags=- details=lua_response owner=trace-a"
                     for line in lines), "the 403 from trace-a: trace-b's decoder never ran, its encoder did; trace-a owns the reply")
        lab.fact(any(line == "/deny code=200 decode=a encode=b,a flags=- details=lua_response owner=trace-a"
                     for line in lines), "the gRPC form of the 403 is logged with the code it was sent with: 200")
        lab.fact(any(line == "/upload code=413 decode=a,b encode=b,a flags=- details=request_payload_too_large owner=whole-request"
                     for line in lines), "the 413 is logged as request_payload_too_large, owned by the filter that buffered")
        lab.fact(any(line == "/buffered/big/65536 code=500 decode=a,b encode=- flags=- details=response_payload_too_large owner=-"
                     for line in lines), "the 500 is logged as response_payload_too_large, with no encoder stamp and no owner")

    with lab.section("stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^http\\.fm\\.(downstream_rq_too_large|rs_too_large|"
               "downstream_rq_4xx|downstream_rq_5xx)$'", ns=ns)
        lab.fact(lab.stat(ADMIN, "http.fm.downstream_rq_too_large", ns=ns) == 1, "downstream_rq_too_large counts the 413")
        lab.fact(lab.stat(ADMIN, "http.fm.rs_too_large", ns=ns) == 1, "rs_too_large counts the 500")
