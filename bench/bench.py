#!/usr/bin/env python3
"""Helpers for bench/run.sh: setup against moto, request preparation (wrk Lua scripts with the
exact bytes to replay), wrk output parsing and the report table.

Runs under the project virtualenv (boto3/botocore). Sub-commands:

  free-port
  moto-setup ENDPOINT ROLE_NAME TRUST_JSON
  prepare-arwwi OUT_LUA ENDPOINT ROLE_ARN TOKEN_FILE
  prepare-gci OUT_LUA ENDPOINT ROLE_ARN TOKEN_FILE
  parse WRK_OUTPUT TARGET CASE CONNECTIONS ELAPSED_S SERVER_TICKS MACHINE_TICKS IRQ_TICKS CLK_TCK
        WRK_CPU_S
        (appends one JSON line to $BENCH_RESULTS)
  report RESULTS_JSONL OUT_MD
"""

import json
import re
import socket
import sys
import urllib.parse
import urllib.request

STS_VERSION = "2011-06-15"
FORM_CT = "application/x-www-form-urlencoded; charset=utf-8"
REGION = "us-east-1"


def die(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def moto_setup(endpoint, role_name, trust):
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)
    print(iam.get_role(RoleName=role_name)["Role"]["Arn"])


def arwwi_body(role_arn, token):
    return urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": STS_VERSION,
            "RoleArn": role_arn,
            "RoleSessionName": "bench",
            "WebIdentityToken": token,
        }
    )


def post(endpoint, body, headers):
    req = urllib.request.Request(endpoint + "/", data=body.encode(), method="POST")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def lua_long_string(s):
    level = 1
    while ("]" + "=" * level + "]") in s:
        level += 1
    eq = "=" * level
    return f"[{eq}[{s}]{eq}]"


def write_lua(path, body, headers):
    lines = ['wrk.method = "POST"', f"wrk.body = {lua_long_string(body)}"]
    for k, v in headers.items():
        # A space after "[": "headers[[=[" would open a Lua long string.
        lines.append(f"wrk.headers[ {lua_long_string(k)} ] = {lua_long_string(v)}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def xml_text(doc, tag):
    m = re.search(rf"<{tag}>([^<]*)</{tag}>", doc)
    return m.group(1) if m else None


def assume(endpoint, role_arn, token):
    """One AssumeRoleWithWebIdentity with the exact request the load replays; checks it."""
    body = arwwi_body(role_arn, token)
    headers = {"Content-Type": FORM_CT}
    status, doc = post(endpoint, body, headers)
    if status != 200:
        die(f"AssumeRoleWithWebIdentity at {endpoint} answered {status}: {doc[:500]}")
    creds = {t: xml_text(doc, t) for t in ("AccessKeyId", "SecretAccessKey", "SessionToken")}
    if not all(creds.values()) or xml_text(doc, "Arn") is None:
        die(f"AssumeRoleWithWebIdentity at {endpoint}: no credentials in {doc[:500]}")
    return body, headers, creds, xml_text(doc, "Arn")


def prepare_arwwi(out, endpoint, role_arn, token_file):
    token = open(token_file).read().strip()
    body, headers, _, arn = assume(endpoint, role_arn, token)
    write_lua(out, body, headers)
    print(f"  AssumeRoleWithWebIdentity -> {arn}", file=sys.stderr)


def prepare_gci(out, endpoint, role_arn, token_file):
    """Session credentials from one AssumeRoleWithWebIdentity, then ONE SigV4 signature of
    GetCallerIdentity (valid 5 minutes, no nonce) that the load replays unchanged."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    token = open(token_file).read().strip()
    _, _, c, _ = assume(endpoint, role_arn, token)
    creds = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    body = f"Action=GetCallerIdentity&Version={STS_VERSION}"
    req = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={"Content-Type": FORM_CT})
    SigV4Auth(creds, "sts", REGION).add_auth(req)
    headers = {k: v for k, v in req.headers.items() if k.lower() not in ("content-length",)}
    # Host is signed; wrk sends exactly "host:port" from the URL, which is what botocore signed.
    headers.pop("Host", None)
    status, doc = post(endpoint, body, headers)
    if status != 200 or "GetCallerIdentityResult" not in doc:
        die(f"signed GetCallerIdentity at {endpoint} answered {status}: {doc[:500]}")
    write_lua(out, body, headers)
    print(f"  GetCallerIdentity (session credentials) -> {xml_text(doc, 'Arn')}", file=sys.stderr)


def to_ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", v)
    if not m:
        return None
    x = float(m.group(1))
    return x * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}[m.group(2)]


def parse(path, target, case, conns, elapsed, server_ticks, machine_ticks, irq_ticks, clk_tck, wrk_cpu_s):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", text, re.M))
    if not rps or not total:
        die(f"cannot parse wrk output {path}:\n{text}")
    res = {
        "target": target,
        "case": case,
        "connections": int(conns),
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "p50_ms": to_ms(pct["50"]) if "50" in pct else None,
        "p90_ms": to_ms(pct["90"]) if "90" in pct else None,
        "p99_ms": to_ms(pct["99"]) if "99" in pct else None,
    }
    # CPU over the measured run, in cores (2 = the whole machine).
    elapsed, tck = float(elapsed), float(clk_tck)
    server_s = int(server_ticks) / tck
    res["server_us_per_req"] = server_s * 1e6 / res["requests"] if res["requests"] else None
    res["server_cores"] = server_s / elapsed
    res["wrk_cores"] = float(wrk_cpu_s) / elapsed
    res["irq_cores"] = int(irq_ticks) / tck / elapsed  # irq+softirq, mostly loopback TCP; overlaps the others
    res["other_cores"] = max(0.0, int(machine_ticks) / tck / elapsed - res["server_cores"] - res["wrk_cores"])
    import os

    with open(os.environ["BENCH_RESULTS"], "a") as f:
        f.write(json.dumps(res) + "\n")
    line = (
        f"  {target:6} {case:26} c={conns:<3} {res['rps']:>10.1f} req/s  "
        f"p50 {fmt_ms(res['p50_ms'])}  p99 {fmt_ms(res['p99_ms'])}  "
        f"non-2xx {res['non2xx']}  socket errors {res['socket_errors']}  "
        f"server {res['server_us_per_req']:.0f} µs CPU/req ({res['server_cores']:.2f} cores), "
        f"wrk {res['wrk_cores']:.2f}, other {res['other_cores']:.2f} (softirq {res['irq_cores']:.2f})"
    )
    print(line)
    if res["non2xx"] or res["socket_errors"]:
        print(f"bench.py: {target} {case} c={conns}: {res['non2xx']} non-2xx responses, "
              f"{res['socket_errors']} socket errors", file=sys.stderr)
        sys.exit(2)


def fmt_ms(v):
    if v is None:
        return "-"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def fmt_rps(v):
    return "-" if v is None else f"{v:,.0f}"


# case, connections, target text, check(podiam, moto) -> bool or None
TARGETS = [
    ("AssumeRoleWithWebIdentity", 32, "≥ 8,000 req/s and ≥ 20× moto",
     lambda p, m: p["rps"] >= 8000 and m is not None and p["rps"] >= 20 * m["rps"]),
    ("AssumeRoleWithWebIdentity", 4, "p99 ≤ 2 ms", lambda p, m: p["p99_ms"] is not None and p["p99_ms"] <= 2.0),
    ("GetCallerIdentity", 32, "≥ 15,000 req/s", lambda p, m: p["rps"] >= 15000),
    ("GetCallerIdentity", 4, "(informational)", None),
]


def report(results_path, out_md, meta_path=None):
    rows = [json.loads(l) for l in open(results_path) if l.strip()]
    by = {(r["target"], r["case"], r["connections"]): r for r in rows}
    out = [
        "| case | connections | podiam req/s | moto req/s | ratio | podiam p99 | target | met? |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    all_met = True
    for case, conns, text, check in TARGETS:
        p = by.get(("podiam", case, conns))
        m = by.get(("moto", case, conns))
        if p is None:
            continue
        ratio = f"{p['rps'] / m['rps']:.0f}×" if m and m["rps"] > 0 else "-"
        met = "-"
        if check is not None:
            ok = check(p, m)
            all_met &= ok
            met = "yes" if ok else "**no**"
        out.append(
            f"| {case} | {conns} | {fmt_rps(p['rps'])} | {fmt_rps(m['rps'] if m else None)} | {ratio} "
            f"| {fmt_ms(p['p99_ms'])} | {text} | {met} |"
        )
    out += [
        "",
        "Latency detail (wrk, per request, closed loop):",
        "",
        "| server | case | connections | req/s | p50 | p90 | p99 | requests | server CPU/req | cores: server / wrk / other | softirq |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['target']} | {r['case']} | {r['connections']} | {fmt_rps(r['rps'])} | {fmt_ms(r['p50_ms'])} "
            f"| {fmt_ms(r['p90_ms'])} | {fmt_ms(r['p99_ms'])} | {r['requests']:,} "
            f"| {r['server_us_per_req']:.0f} µs "
            f"| {r['server_cores']:.2f} / {r['wrk_cores']:.2f} / {r['other_cores']:.2f} | {r['irq_cores']:.2f} |"
        )
    noisy = [r for r in rows if r["other_cores"] > 0.2]
    if noisy:
        out += ["", "**Warning:** other processes used CPU during "
                + ", ".join(f"{r['target']} {r['case']} c={r['connections']} ({r['other_cores']:.2f} cores)" for r in noisy)
                + "; those numbers are low."]
    if meta_path:
        out += ["", open(meta_path).read().rstrip()]
    text = "\n".join(out) + "\n"
    with open(out_md, "w") as f:
        f.write(text)
    print(text)
    print("all targets met" if all_met else "NOT all targets met")
    return all_met


def main(argv):
    if not argv:
        die(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "free-port":
        free_port()
    elif cmd == "moto-setup":
        moto_setup(*args)
    elif cmd == "prepare-arwwi":
        prepare_arwwi(*args)
    elif cmd == "prepare-gci":
        prepare_gci(*args)
    elif cmd == "parse":
        parse(*args)
    elif cmd == "report":
        ok = report(*args)
        sys.exit(0 if ok else 3)
    else:
        die(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
