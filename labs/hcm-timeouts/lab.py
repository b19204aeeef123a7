"""HTTP connection manager timers and codec selection, told by responses, access log and stats.

One Envoy (one worker) with one HTTP listener (codec_type AUTO) whose per-stream timers are short
(see envoy.yaml): stream idle 400 ms, whole request 1 s, request headers 200 ms. Behind it,
labs/common/upstream.py (its /delay/<ms> answers late; it speaks only HTTP/1.1, and one cluster
talks HTTP/2 to it anyway) and stall.py (starts a response, then goes quiet). client.py sends
what curl cannot send slowly on purpose.

Sections: start, protocols, stream-idle, request-timeout, header-timeout, grpc-deadline,
reset-http1, reset-http2, h2-mismatch, access-log, counters.
"""

import time

from labs.kit import LabFailure

TITLE = "HCM timers (stream idle, request, request headers, max stream duration), codec AUTO, codec resets"
SUMMARY_ZH = "HTTP 连接管理器的流空闲、请求、请求头和最长流时长定时器，AUTO 编解码器选择协议，编解码器的流重置。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
NORMALIZE = []
PREFIX = "http.front."


def run(lab):
    ns = lab.pod("hcm")

    def stat(name):
        return lab.stat(ADMIN, name, ns=ns)

    def until(name, value):
        """Counters move when a timer fires or a stream is torn down: wait for it (bounded)."""
        deadline = time.monotonic() + 5
        while stat(name) < value and time.monotonic() < deadline:
            time.sleep(0.05)
        return stat(name)

    def stats(pattern):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={pattern}'", ns=ns)

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start("python3 stall.py --port 8090", name="stall", ns=ns, ready=lab.port_open(8090, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
                  "--log-level warn", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("protocols"):
        fmt = "-o /dev/null -w 'http_version=%{http_version}\\n' 127.0.0.1:10000/local"
        lab.sh(f"curl -s --http1.1 {fmt}", ns=ns)
        lab.fact("http_version=1.1" in lab.last.output, "plain HTTP/1.1 is served by the HTTP/1 codec")
        lab.sh(f"curl -s --http2 {fmt}", ns=ns)
        lab.fact("http_version=1.1" in lab.last.output, "an Upgrade: h2c request stays HTTP/1.1")
        lab.sh(f"curl -s --http2-prior-knowledge {fmt}", ns=ns)
        lab.fact("http_version=2" in lab.last.output, "HTTP/2 prior knowledge is served by the HTTP/2 codec")
        stats("^http\\.front\\.downstream_cx_http(1|2|3)_total$")
        lab.fact(stat(PREFIX + "downstream_cx_http1_total") == 2 and stat(PREFIX + "downstream_cx_http2_total") == 1,
                 "one listener, codec AUTO: two HTTP/1 connections and one HTTP/2 connection")

    with lab.section("stream-idle"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:10000/delay/1500", ns=ns)
        lab.fact("stream timeout" in lab.last.output and "status=504" in lab.last.output,
                 "a complete request whose upstream stays silent gets 504 'stream timeout'")
        lab.fact(until(PREFIX + "downstream_rq_idle_timeout", 1) == 1, "downstream_rq_idle_timeout moves by 1")

    with lab.section("request-timeout"):
        lab.sh("python3 client.py --port 10000 --mode slow-body /delay/3000", ns=ns)
        out = lab.last.output
        lab.fact("408 Request Timeout" in out and "body: request timeout" in out,
                 "a request whose body is still arriving after 1 s gets 408 'request timeout'")
        lab.fact("connection: close" in out, "the HTTP/1.1 connection is closed after the early response")
        lab.fact("still unfinished" in out, "the body was still arriving: the stream was never idle")
        lab.fact(until(PREFIX + "downstream_rq_timeout", 1) == 1 and stat(PREFIX + "downstream_rq_idle_timeout") == 1,
                 "downstream_rq_timeout moves by 1, the stream idle counter does not")
        lab.fact(until(PREFIX + "downstream_rq_rx_reset", 1) == 1 and stat(PREFIX + "downstream_rq_tx_reset") == 0,
                 "answering before the request is complete resets the downstream stream: rx_reset 1, tx_reset 0")

    with lab.section("header-timeout"):
        lab.sh("python3 client.py --port 10000 --mode partial-headers /local", ns=ns)
        out = lab.last.output
        lab.fact("408 Request Timeout" in out and "body: request header timeout" in out,
                 "headers that never finish get 408 'request header timeout'")
        lab.fact(until(PREFIX + "downstream_rq_header_timeout", 1) == 1, "downstream_rq_header_timeout moves by 1")
        lab.fact(until(PREFIX + "downstream_rq_rx_reset", 2) == 2, "the unfinished request is reset too: rx_reset 2")

    with lab.section("grpc-deadline"):
        lab.sh("curl -s -H 'grpc-timeout: 200m' -w '\\nstatus=%{http_code}\\n' 127.0.0.1:10000/delay/1500", ns=ns)
        lab.fact("downstream duration timeout" in lab.last.output and "status=504" in lab.last.output,
                 "the grpc-timeout header arms the HCM's max stream duration timer: 504 'downstream duration timeout'")
        lab.fact(until(PREFIX + "downstream_rq_max_duration_reached", 1) == 1,
                 "downstream_rq_max_duration_reached moves by 1")
        lab.fact(stat(PREFIX + "downstream_rq_idle_timeout") == 1, "the stream idle timer (400 ms) did not fire first")
        lab.fact(stat(PREFIX + "downstream_rq_rx_reset") == 2, "a complete request answered locally is not reset")

    with lab.section("reset-http1"):
        lab.sh("curl -sS -o /dev/null -w 'status=%{http_code}\\n' 127.0.0.1:10000/stall; echo \"curl exit=$?\"", ns=ns)
        out = lab.last.output
        lab.fact("status=200" in out and "curl exit=18" in out,
                 "response headers were already sent: the client got 200 and then a cut-off body (curl error 18)")
        lab.fact(until(PREFIX + "downstream_rq_idle_timeout", 2) == 2, "the stream idle timer fired again")

    with lab.section("reset-http2"):
        lab.sh("curl -sS --http2-prior-knowledge -o /dev/null -w 'status=%{http_code}\\n' 127.0.0.1:10000/stall; "
               "echo \"curl exit=$?\"", ns=ns)
        out = lab.last.output
        lab.fact("INTERNAL_ERROR" in out and "curl exit=92" in out,
                 "over HTTP/2 the same timer becomes RST_STREAM with INTERNAL_ERROR")
        lab.fact(until(PREFIX + "downstream_rq_idle_timeout", 3) == 3, "the stream idle timer fired a third time")
        stats("^http2\\.(tx_reset|rx_reset)$")
        lab.fact(until("http2.tx_reset", 1) == 1, "the HTTP/2 codec counts one RST_STREAM sent")
        until("cluster.stall.upstream_cx_destroy", 2)
        lab.sh("cat stall.log | grep conn=")

    with lab.section("h2-mismatch"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:10000/h2-upstream", ns=ns)
        out = lab.last.output
        lab.fact("reset reason: protocol error" in out and "status=502" in out,
                 "HTTP/2 spoken to an HTTP/1.1-only upstream: 502, reset reason protocol error")
        lab.fact(until("cluster.backend_h2.upstream_cx_protocol_error", 1) == 1
                 and stat("cluster.backend_h2.upstream_cx_connect_fail") == 0,
                 "the connection itself succeeded (no connect failure); the codec found a protocol error")
        stats("^cluster\\.backend_h2\\.upstream_(cx_total|cx_connect_fail|cx_protocol_error|rq_502)$")
        lab.sh("grep -o 'PRI .*' upstream.log")
        lab.fact("PRI * -> 200" in lab.last.output,
                 "upstream.py read the HTTP/2 preface as an HTTP/1.1 request for PRI * and answered in HTTP/1.1")

    with lab.section("access-log"):
        deadline = time.monotonic() + 5
        while len(lab.log("requests").splitlines()) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        lab.sh("cat requests.log")
        log = lab.last.output
        if len(log.splitlines()) != 10:
            raise LabFailure(f"lab {lab.name}: requests.log has {len(log.splitlines())} lines, not 10")
        lab.fact("/delay/1500 HTTP/1.1 code=504 flags=SI details=stream_idle_timeout" in log,
                 "stream idle: 504, flag SI, details stream_idle_timeout")
        lab.fact("/delay/3000 HTTP/1.1 code=408 flags=- details=request_overall_timeout" in log,
                 "request timeout: 408, no flag, details request_overall_timeout")
        lab.fact("- HTTP/1.1 code=408 flags=- details=request_header_timeout" in log,
                 "request headers timeout: 408, no path, details request_header_timeout")
        lab.fact("/delay/1500 HTTP/1.1 code=504 flags=- details=max_duration_timeout" in log,
                 "max stream duration: 504, no flag, details max_duration_timeout")
        lab.fact("/stall HTTP/1.1 code=200 flags=SI details=stream_idle_timeout" in log
                 and "/stall HTTP/2 code=200 flags=SI details=stream_idle_timeout" in log,
                 "after the response started: logged 200 with SI and stream_idle_timeout, on both protocols")
        lab.fact("/h2-upstream HTTP/1.1 code=502 flags=UPE details=upstream_reset_before_response_started{protocol_error}" in log,
                 "the protocol mismatch: 502, flag UPE, details upstream_reset_before_response_started{protocol_error}")

    with lab.section("counters"):
        stats("^http\\.front\\.downstream_(rq_(idle_timeout|timeout|header_timeout|max_duration_reached|tx_reset|rx_reset)"
              "|cx_http(1|2)_total)$")
        lab.fact(stat(PREFIX + "downstream_rq_tx_reset") == 2 and stat(PREFIX + "downstream_rq_rx_reset") == 4,
                 "tx_reset counts the two resets after the response started; rx_reset counts every reset of a "
                 "downstream stream (those two and the two unfinished requests), whoever sent it")
