#!/usr/bin/env python3
"""Writes the line parser's corpus: one TSV file per format, each line
`expected timestamp<TAB>expected level<TAB>the log line`, where the
timestamp is RFC 3339 in UTC (or `-`: the line has none) and the level one
of TRACE DEBUG INFO WARN ERROR FATAL (or `-`: the line has none).

The lines follow each format as its software documents it or as public
samples show it (the source is named at the top of each file); their
contents vary timestamps, levels and messages after those samples. The
first lines of several files are the documented examples verbatim. Times
without a year or a date are read as seen at NOW (below), as the test does.

Run from this directory: python3 generate.py
"""
import datetime as dt
import random

NOW = dt.datetime(2025, 12, 15, 23, 0, 0, tzinfo=dt.timezone.utc)
UTC = dt.timezone.utc
rng = random.Random(12)


def iso(t):
    s = t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    us = t.microsecond
    if us:
        s += ("." + f"{us:06d}").rstrip("0")
    return s + "Z"


def times(n, start, step_s=97):
    t = start
    out = []
    for _ in range(n):
        t = t + dt.timedelta(seconds=rng.randint(1, step_s), microseconds=rng.randint(0, 999) * 1000)
        out.append(t)
    return out


LEVELS = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"]
files = {}


def add(name, source, rows):
    files[name] = (source, rows)


def pick(seq):
    return seq[rng.randrange(len(seq))]


# --- Apache httpd 2.2 error log (loghub Apache_2k) -----------------------
rows = []
msgs = {
    "notice": ["workerEnv.init() ok /etc/httpd/conf/workers2.properties", "jk2_init() Found child 6725 in scoreboard slot 10",
               "Digest: generating secret for digest authentication ..."],
    "error": ["mod_jk child workerEnv in error state 6", "[client 222.166.160.184] Directory index forbidden by rule: /var/www/html/"],
    "warn": ["RSA server certificate CommonName (CN) `localhost' does NOT match server name!?"],
}
lv = {"notice": "INFO", "error": "ERROR", "warn": "WARN"}
for t in times(16, dt.datetime(2005, 12, 4, 4, 47, 0, tzinfo=UTC)):
    k = pick(list(msgs))
    t = t.replace(microsecond=0)
    rows.append((iso(t), lv[k], f"[{t:%a %b %d %H:%M:%S %Y}] [{k}] {pick(msgs[k])}"))
add("apache-error-2.2", "Apache httpd 2.2 error log, as in loghub's Apache_2k sample (github.com/logpai/loghub)", rows)

# --- Apache httpd 2.4 error log (httpd docs: "Log Files", ErrorLogFormat) --
rows = [("2000-10-11T14:32:52.123456Z", "ERROR",
         "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico")]
mods = [("core", "error", "AH00126: Invalid URI in request GET /../../etc/passwd HTTP/1.1"),
        ("mpm_event", "notice", "AH00489: Apache/2.4.57 (Unix) configured -- resuming normal operations"),
        ("ssl", "warn", "AH01909: www.example.com:443:0 server certificate does NOT include an ID which matches the server name"),
        ("proxy", "error", "(111)Connection refused: AH00957: http: attempt to connect to 127.0.0.1:8080 (127.0.0.1) failed"),
        ("authz_core", "debug", "AH01626: authorization result of Require all granted: granted")]
for t in times(14, dt.datetime(2025, 10, 10, 9, 0, tzinfo=UTC)):
    m, l, text = pick(mods)
    rows.append((iso(t), {"error": "ERROR", "notice": "INFO", "warn": "WARN", "debug": "DEBUG"}[l],
                 f"[{t:%a %b %d %H:%M:%S}.{t.microsecond:06d} {t:%Y}] [{m}:{l}] [pid {rng.randint(1000, 9999)}:tid {rng.randint(10**9, 10**10)}] {text}"))
add("apache-error-2.4", "Apache httpd 2.4 error log (httpd.apache.org/docs/2.4/logs.html and mod/core.html#errorlogformat)", rows)

# --- access logs: common and combined log format (httpd docs) -------------
rows = [("2000-10-10T20:55:36Z", "-", '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'),
        ("2000-10-10T20:55:36Z", "-", '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"')]
for t in times(14, dt.datetime(2025, 10, 10, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))):
    t = t.replace(microsecond=0)
    path = pick(["/api/v1/orders", "/index.html", "/static/app.js", "/login"])
    rows.append((iso(t), "-", f'10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)} - - [{t:%d/%b/%Y:%H:%M:%S %z}] "GET {path} HTTP/1.1" {pick([200, 200, 304, 404, 500])} {rng.randint(100, 9999)} "-" "curl/8.5.0"'))
add("access-log", "Common and combined log formats (httpd.apache.org/docs/2.4/logs.html; nginx's default `combined`)", rows)

# --- nginx error log ------------------------------------------------------
rows = []
nm = [("error", "ERROR", 'open() "/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory), client: 10.0.0.7, server: localhost, request: "GET /favicon.ico HTTP/1.1"'),
      ("warn", "WARN", "an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/1/00/0000000001 while reading upstream"),
      ("notice", "INFO", "signal process started"),
      ("crit", "FATAL", 'connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream'),
      ("info", "INFO", "client 10.0.0.9 closed keepalive connection")]
for t in times(15, dt.datetime(2025, 10, 10, 12, 0, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    k, l, text = pick(nm)
    rows.append((iso(t), l, f"{t:%Y/%m/%d %H:%M:%S} [{k}] {rng.randint(100, 999)}#0: *{rng.randint(1, 900)} {text}"))
add("nginx-error", "nginx error log (nginx.org/en/docs/ngx_core_module.html#error_log)", rows)

# --- syslog RFC 3164 files (loghub Linux, OpenSSH, Mac) --------------------
rows = [("2025-10-11T22:14:15Z", "FATAL", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"),
        ("2025-08-24T05:14:15Z", "Debug".upper(), "<13>Aug 24 05:14:15 192.0.2.1 myproc[8710]: %% It's time to make the do-nuts.  %%  Ingredients: Mix=OK, Jam=OK")]
rows[1] = ("2025-08-24T05:14:15Z", "INFO", rows[1][2])
progs = [("sshd", "[%d]", ["pam_unix(sshd:session): session opened for user root by (uid=0)", "Received disconnect from 112.95.230.3: 11: Bye Bye [preauth]",
                           "Invalid user admin from 183.62.140.253"]),
         ("kernel", "", ["usb 1-1: new high-speed USB device number 3 using ehci-pci"]),
         ("su(pam_unix)", "[%d]", ["session opened for user cyrus by (uid=0)"]),
         ("CRON", "[%d]", ["(root) CMD (run-parts /etc/cron.hourly)"])]
for t in times(14, dt.datetime(2025, 6, 14, 15, 16, tzinfo=UTC), step_s=4000):
    t = t.replace(microsecond=0)
    prog, pid, texts = pick(progs)
    tag = prog + (pid % rng.randint(100, 30000) if pid else "")
    rows.append((iso(t), "-", f"{t:%b} {t.day:2d} {t:%H:%M:%S} combo {tag}: {pick(texts)}"))
for t in times(4, dt.datetime(2025, 12, 10, 6, 55, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    rows.append((iso(t), "ERROR", f"{t:%b} {t.day:2d} {t:%H:%M:%S} LabSZ sshd[{rng.randint(20000, 30000)}]: error: Received disconnect from 103.99.0.122: 14: No more user authentication methods available. [preauth]"))
add("syslog-rfc3164", "RFC 3164 §5.4 examples (the first two lines), and syslog files as in loghub's Linux_2k and OpenSSH_2k samples", rows)

# --- syslog RFC 5424 (the RFC's §6.5 examples) ----------------------------
rows = [("2003-10-11T22:14:15.003Z", "FATAL", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \ufeff'su root' failed for lonvick on /dev/pts/8"),
        ("2003-08-24T12:14:15.000003Z", "INFO", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."),
        ("2003-10-11T22:14:15.003Z", "INFO", '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] \ufeffAn application event log entry...'),
        ("-", "INFO", '<165>1 - mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] no time')]
for t in times(10, dt.datetime(2025, 10, 10, 1, 0, tzinfo=UTC)):
    sev = rng.randint(0, 7)
    lvl = ["FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG"][sev]
    rows.append((iso(t), lvl, f"<{8 + sev}>1 {iso(t)} web-01 billing {rng.randint(100, 999)} - - payment {rng.randint(1, 99999)} processed"))
add("syslog-rfc5424", "RFC 5424 §6.5 examples (the first three lines), and lines of the same shape", rows)

# --- HDFS (loghub HDFS_2k) --------------------------------------------------
rows = []
hm = [("INFO", "dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"),
      ("INFO", "dfs.FSNamesystem: BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864"),
      ("WARN", "dfs.DataNode$DataXceiver: 10.251.39.179:50010:Got exception while serving blk_-4980916519894289629 to /10.251.39.179:"),
      ("INFO", "dfs.DataNode$DataXceiver: Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010")]
for t in times(16, dt.datetime(2008, 11, 9, 20, 35, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    l, text = pick(hm)
    rows.append((iso(t), l, f"{t:%y%m%d %H%M%S} {rng.randint(13, 999)} {l} {text}"))
add("hdfs", "HDFS logs as in loghub's HDFS_2k sample (yyMMdd HHmmss)", rows)

# --- Hadoop (loghub Hadoop_2k) -----------------------------------------------
rows = []
for t in times(15, dt.datetime(2015, 10, 18, 18, 1, tzinfo=UTC)):
    l = pick(["INFO", "INFO", "WARN", "ERROR"])
    rows.append((iso(t), l, f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} {l} [{pick(['main', 'RMCommunicator Allocator', 'IPC Server handler 13 on 62270'])}] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001"))
add("hadoop", "Hadoop logs as in loghub's Hadoop_2k sample (log4j `yyyy-MM-dd HH:mm:ss,SSS`)", rows)

# --- Spark (loghub Spark_2k) ---------------------------------------------------
rows = []
for t in times(15, dt.datetime(2017, 6, 9, 20, 10, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    l = pick(["INFO", "INFO", "WARN", "ERROR"])
    rows.append((iso(t), l, f"{t:%y/%m/%d %H:%M:%S} {l} {pick(['executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]', 'spark.SecurityManager: Changing view acls to: yarn,curi', 'storage.MemoryStore: Block broadcast_0 stored as values in memory'])}"))
add("spark", "Spark logs as in loghub's Spark_2k sample (`yy/MM/dd HH:mm:ss`)", rows)

# --- Zookeeper (loghub Zookeeper_2k) ---------------------------------------------
rows = []
for t in times(15, dt.datetime(2015, 7, 29, 17, 41, tzinfo=UTC)):
    l = pick(["INFO", "INFO", "WARN", "ERROR"])
    rows.append((iso(t), l, f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} - {l:<5} [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: {rng.randint(200, 60000)}"))
add("zookeeper", "ZooKeeper logs as in loghub's Zookeeper_2k sample", rows)

# --- log4j / logback ------------------------------------------------------------
rows = []
for t in times(8, dt.datetime(2025, 12, 15, 9, 0, tzinfo=UTC), step_s=900):
    l = pick(["INFO", "DEBUG", "WARN", "ERROR", "TRACE"])
    rows.append((iso(t), l, f"{t:%H:%M:%S}.{t.microsecond // 1000:03d} [{pick(['main', 'http-nio-8080-exec-1'])}] {l:<5} c.e.shop.OrderService - order {rng.randint(1, 9999)} accepted"))
for t in times(8, dt.datetime(2025, 10, 10, 9, 0, tzinfo=UTC)):
    l = pick(["INFO", "DEBUG", "WARN", "ERROR", "FATAL"])
    rows.append((iso(t), l, f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} {l:<5} [{pick(['main', 'pool-1-thread-2'])}] com.example.shop.App - cache refreshed in {rng.randint(1, 900)} ms"))
add("log4j-logback", "logback's default console pattern `%d{HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n` (logback.qos.ch/manual/layouts.html), and log4j 1's `%d %-5p [%t] %c - %m%n`", rows)

# --- Spring Boot ------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2025, 10, 10, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))):
    l = pick(["INFO", "INFO", "WARN", "ERROR", "DEBUG"])
    ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+02:00"
    rows.append((iso(t), l, f"{ts} {l:>5} {rng.randint(1000, 99999)} --- [myapp] [           main] o.s.b.d.f.logexample.MyApplication       : Started MyApplication in {rng.randint(1, 9)}.{rng.randint(100, 999)} seconds"))
add("spring-boot", "Spring Boot's default log format (docs.spring.io/spring-boot/reference/features/logging.html)", rows)

# --- Python logging ------------------------------------------------------------------
rows = [("-", "WARN", "WARNING:root:Watch out!"), ("-", "INFO", "INFO:root:So should this"), ("-", "ERROR", "ERROR:myapp.db:connection refused")]
for t in times(12, dt.datetime(2025, 10, 10, 11, 0, tzinfo=UTC)):
    l = pick(["INFO", "WARNING", "ERROR", "DEBUG", "CRITICAL"])
    want = {"WARNING": "WARN", "CRITICAL": "FATAL"}.get(l, l)
    rows.append((iso(t), want, f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} - {pick(['myapp', 'urllib3.connectionpool', 'celery.worker'])} - {l} - task {rng.randint(1, 999)} done"))
add("python-logging", "Python logging: `basicConfig`'s default `%(levelname)s:%(name)s:%(message)s` (docs.python.org/3/howto/logging.html, the first two lines) and `%(asctime)s - %(name)s - %(levelname)s - %(message)s`", rows)

# --- Go ---------------------------------------------------------------------------
rows = [("2009-11-10T23:00:00Z", "-", "2009/11/10 23:00:00 Hello, log file!")]
for t in times(8, dt.datetime(2025, 10, 10, 13, 0, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    rows.append((iso(t), "-", f"{t:%Y/%m/%d %H:%M:%S} listening on :8080"))
for t in times(8, dt.datetime(2025, 10, 10, 14, 0, tzinfo=UTC)):
    l = pick(["INFO", "WARN", "ERROR", "DEBUG"])
    rows.append((iso(t), l, f'time={iso(t)} level={l} msg="request served" path=/api/v1/items status=200'))
add("go", "Go's log package (`LstdFlags`, pkg.go.dev/log; the first line is its documented example) and log/slog's TextHandler (pkg.go.dev/log/slog)", rows)

# --- java.util.logging SimpleFormatter (two lines per record) --------------------------
rows = []
for t in times(8, dt.datetime(2025, 10, 10, 8, 0, tzinfo=UTC), step_s=20000):
    t = t.replace(microsecond=0)
    h12 = t.hour % 12 or 12
    ampm = "AM" if t.hour < 12 else "PM"
    rows.append((iso(t), "-", f"{t:%b} {t.day}, {t.year} {h12}:{t:%M:%S} {ampm} com.example.shop.Checkout submit"))
    l = pick(["INFO", "WARNING", "SEVERE", "FINE"])
    rows.append(("-", {"WARNING": "WARN", "SEVERE": "ERROR", "FINE": "DEBUG"}.get(l, l), f"{l}: checkout {rng.randint(1, 9999)} submitted"))
add("java-util-logging", "java.util.logging's SimpleFormatter default, a record on two lines (docs.oracle.com/en/java/javase/21/docs/api/java.logging/java/util/logging/SimpleFormatter.html)", rows)

# --- Android logcat threadtime (loghub Android_2k) -----------------------------------------
rows = []
for t in times(16, dt.datetime(2025, 3, 17, 16, 13, tzinfo=UTC)):
    l = pick(["D", "I", "I", "W", "E", "V"])
    rows.append((iso(t), {"D": "DEBUG", "I": "INFO", "W": "WARN", "E": "ERROR", "V": "TRACE"}[l],
                 f"{t:%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}  {rng.randint(100, 9999):>4}  {rng.randint(100, 9999):>4} {l} {pick(['WindowManager', 'PowerManagerService', 'ActivityManager'])}: {pick(['printFreezingDisplayLogsopening app wtoken = AppWindowToken', 'release:lock=233570404, flg=0x0, tag=View Lock', 'Start proc 23453:com.android.settings'])}"))
rows.append(("-", "INFO", "I/ActivityManager(  585): Start proc com.android.browser for activity com.android.browser/.BrowserActivity"))
add("android-logcat", "Android logcat's threadtime format, as in loghub's Android_2k sample; one line of the brief format (developer.android.com/tools/logcat)", rows)

# --- Kubernetes klog ---------------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2025, 11, 20, 10, 0, tzinfo=UTC)):
    l = pick(["I", "I", "W", "E"])
    rows.append((iso(t), {"I": "INFO", "W": "WARN", "E": "ERROR"}[l],
                 f"{l}{t:%m%d %H:%M:%S}.{t.microsecond:06d}    {rng.randint(1, 99999)} {pick(['reflector.go:255', 'controller.go:114', 'server.go:892'])}] {pick(['Listing and watching *v1.Pod', 'Starting controller', 'Failed to watch *v1.Node: connection refused'])}"))
add("klog", "Kubernetes components' klog header `Lmmdd hh:mm:ss.uuuuuu threadid file:line]` (github.com/kubernetes/klog)", rows)

# --- Windows CBS (loghub Windows_2k) ---------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2016, 9, 28, 4, 30, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    l = pick(["Info", "Info", "Warning", "Error"])
    rows.append((iso(t), {"Info": "INFO", "Warning": "WARN", "Error": "ERROR"}[l], f"{t:%Y-%m-%d %H:%M:%S}, {l:<22}CBS    Loaded Servicing Stack v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\cbscore.dll"))
add("windows-cbs", "Windows CBS logs as in loghub's Windows_2k sample", rows)

# --- HealthApp (loghub HealthApp_2k) ------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2017, 12, 23, 22, 15, tzinfo=UTC)):
    rows.append((iso(t), "-", f"{t:%Y%m%d-%H:%M:%S}:{t.microsecond // 1000:03d}|Step_LSC|30002312|onStandStepChanged {rng.randint(1000, 9999)}"))
add("healthapp", "HealthApp logs as in loghub's HealthApp_2k sample (`yyyyMMdd-HH:mm:ss:SSS`)", rows)

# --- Proxifier (loghub Proxifier_2k) ----------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2025, 10, 30, 16, 49, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    rows.append((iso(t), "-", f"[{t:%m.%d %H:%M:%S}] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"))
add("proxifier", "Proxifier logs as in loghub's Proxifier_2k sample (`[MM.dd HH:mm:ss]`, year-less)", rows)

# --- BGL (loghub BGL_2k) --------------------------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2005, 6, 3, 15, 42, tzinfo=UTC)):
    t = t.replace(microsecond=0)
    l = pick(["INFO", "INFO", "FATAL", "WARNING"])
    local = t  # the epoch field is the time; the dotted field is local time
    rows.append((iso(t), {"WARNING": "WARN"}.get(l, l), f"- {int(t.timestamp())} {t:%Y.%m.%d} R02-M1-N0-C:J12-U11 {local:%Y-%m-%d-%H.%M.%S}.{rng.randint(0, 999999):06d} R02-M1-N0-C:J12-U11 RAS KERNEL {l} instruction cache parity error corrected"))
add("bgl", "Blue Gene/L RAS logs as in loghub's BGL_2k sample (the epoch seconds are the record's time)", rows)

# --- Redis ------------------------------------------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2025, 10, 10, 6, 0, tzinfo=UTC)):
    sym = pick(["*", "*", "#", "."])
    rows.append((iso(t), {"*": "INFO", "#": "WARN", ".": "DEBUG"}[sym], f"{rng.randint(1, 99999)}:M {t.day} {t:%b %Y %H:%M:%S}.{t.microsecond // 1000:03d} {sym} {pick(['Ready to accept connections tcp', 'Background saving started by pid 4312', 'WARNING overcommit_memory is set to 0!'])}"))
add("redis", "Redis server logs (`pid:role dd Mon yyyy HH:mm:ss.SSS level-symbol`, redis.io/docs)", rows)

PG = ['database system is ready to accept connections', 'relation "orders" does not exist at character 15', 'checkpoint starting: time']
# --- PostgreSQL ------------------------------------------------------------------------------------------------------
rows = []
for t in times(12, dt.datetime(2025, 10, 10, 5, 0, tzinfo=UTC)):
    l = pick(["LOG", "LOG", "ERROR", "FATAL", "WARNING"])
    rows.append((iso(t), {"LOG": "INFO", "WARNING": "WARN"}.get(l, l), f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} UTC [{rng.randint(100, 99999)}] {l}:  {pick(PG)}"))
add("postgresql", "PostgreSQL's default `log_line_prefix = '%m [%p] '` (postgresql.org/docs/current/runtime-config-logging.html)", rows)

# --- MySQL error log ---------------------------------------------------------------------------------------------------
rows = []
for t in times(10, dt.datetime(2025, 10, 10, 4, 0, tzinfo=UTC)):
    l = pick(["System", "Warning", "ERROR", "Note"])
    rows.append((iso(t), {"System": "INFO", "Warning": "WARN", "ERROR": "ERROR", "Note": "INFO"}[l], f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d}Z 0 [{l}] [MY-010068] [Server] CA certificate ca.pem is self signed."))
add("mysql", "MySQL 8 error log (dev.mysql.com/doc/refman/8.0/en/error-log-format.html)", rows)

# --- Elasticsearch ---------------------------------------------------------------------------------------------------------
rows = []
for t in times(10, dt.datetime(2025, 10, 10, 3, 0, tzinfo=UTC)):
    l = pick(["INFO", "WARN", "ERROR", "DEBUG"])
    rows.append((iso(t), l, f"[{t:%Y-%m-%dT%H:%M:%S},{t.microsecond // 1000:03d}][{l:<5}][o.e.n.Node               ] [node-1] started"))
add("elasticsearch", "Elasticsearch's plain-text server log (`[time][LEVEL][logger] [node] message`)", rows)

# --- Rails / Ruby Logger ----------------------------------------------------------------------------------------------------
rows = []
for t in times(10, dt.datetime(2025, 10, 10, 2, 0, tzinfo=UTC)):
    l = pick(["INFO", "WARN", "ERROR", "DEBUG", "FATAL"])
    rows.append((iso(t), l, f"{l[0]}, [{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond:06d} #{rng.randint(100, 99999)}] {l:>5} -- : Started GET \"/orders\" for 127.0.0.1"))
add("ruby-logger", "Ruby's Logger default format, as Rails writes it (ruby-doc.org/stdlib/libdoc/logger)", rows)

# --- OpenStack (loghub OpenStack_2k) ----------------------------------------------------------------------------------------------
rows = []
for t in times(10, dt.datetime(2017, 5, 16, 0, 0, tzinfo=UTC)):
    l = pick(["INFO", "INFO", "WARNING", "ERROR"])
    rows.append((iso(t), {"WARNING": "WARN"}.get(l, l), f"nova-api.log.1.2017-05-16_13:53:08 {t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d} {rng.randint(1000, 99999)} {l} nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 \"GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1\" status: 200 len: 1893 time: 0.2477829"))
add("openstack", "OpenStack logs as in loghub's OpenStack_2k sample (the file name comes first)", rows)

# --- Squid access log ----------------------------------------------------------------------------------------------------------
rows = []
for t in times(10, dt.datetime(2010, 10, 8, 11, 0, tzinfo=UTC)):
    rows.append((iso(t.replace(microsecond=t.microsecond // 1000 * 1000)), "-", f"{int(t.timestamp())}.{t.microsecond // 1000:03d}    {rng.randint(10, 999)} 192.168.0.{rng.randint(2, 254)} TCP_MISS/200 507 POST http://rcv.example.com/ - DIRECT/203.0.113.5 application/xml"))
add("squid-access", "Squid's native access log (unix seconds with milliseconds; wiki.squid-cache.org/Features/LogFormat)", rows)

# --- verbatim first lines of loghub's samples ----------------------------------------------------
add("loghub-first-lines", "The first line of each of loghub's 2k samples (github.com/logpai/loghub, LogPAI), verbatim", [
    ("2005-12-04T04:47:44Z", "INFO", "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties"),
    ("2008-11-09T20:36:15Z", "INFO", "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating"),
    ("2025-03-17T16:13:38.811Z", "DEBUG", "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogsopening app wtoken = AppWindowToken{9f4ef63 token=Token{a64f992 ActivityRecord{de9231d u0 com.tencent.qt.qtl/.activity.info.NewsDetailXmlActivity t761}}}, allDrawn= false, startingDisplayed =  false, startingMoved =  false, isRelaunching =  false"),
    ("2005-06-03T22:42:50Z", "INFO", "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected"),
    ("2005-11-09T20:01:01Z", "-", "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root"),
    ("2004-02-26T14:12:22Z", "-", "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=1877)"),
    ("2025-06-14T15:16:01Z", "-", "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown"),
    ("2025-07-01T09:00:55Z", "-", "Jul  1 09:00:55 calvisitor-10-105-160-95 kernel[0]: IOThunderboltSwitch<0>(0x0)::listenerCallback - Thunderbolt HPD packet for route = 0x0 port = 11 unplug = 0"),
    ("2025-12-10T06:55:46Z", "-", "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!"),
    ("2025-10-30T16:49:06Z", "-", "[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open through proxy proxy.cse.cuhk.edu.hk:5070 HTTPS"),
    ("2017-06-09T20:10:40Z", "INFO", "17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers for [TERM, HUP, INT]"),
    ("2015-07-29T17:41:44.747Z", "INFO", "2015-07-29 17:41:44,747 - INFO  [QuorumPeer[myid=1]/0:0:0:0:0:0:0:0:2181:FastLeaderElection@774] - Notification time out: 3200"),
    ("2015-10-18T18:01:47.978Z", "INFO", "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001"),
    ("2016-09-28T04:30:30Z", "INFO", "2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack v6.1.7601.23505 with Core: C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_6.1.7601.23505_none_681aa442f6fed7f0\\cbscore.dll"),
    ("2017-12-23T22:15:29.606Z", "-", "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579"),
    ("2017-05-16T00:00:00.008Z", "INFO", 'nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [req-38101a0b-2096-447d-96ea-a692162415ae 113d3a99c3da401fbd62cc2caa5b96d2 54fadb412c4e40cdbaed9335e4c35a9e - - -] 10.11.10.1 "GET /v2/54fadb412c4e40cdbaed9335e4c35a9e/servers/detail HTTP/1.1" status: 200 len: 1893 time: 0.2477829'),
])

# --- a Java stack trace: the lines after the first carry neither ------------------------------------
add("java-stacktrace", "A log4j error with its stack trace, one record per line as text/plain sends it", [
    ("2025-10-10T12:26:36.123Z", "ERROR", "2025-10-10 12:26:36,123 ERROR [main] com.example.App - request failed"),
    ("-", "-", "java.lang.IllegalStateException: order 42 is closed"),
    ("-", "-", "    at com.example.shop.Order.ship(Order.java:118)"),
    ("-", "-", "    at com.example.shop.App.main(App.java:42)"),
    ("-", "-", "Caused by: java.io.IOException: Connection reset by peer"),
    ("-", "-", "    at java.base/sun.nio.ch.SocketDispatcher.read0(Native Method)"),
    ("-", "-", "    ... 12 more"),
])

for name, (source, rows) in files.items():
    with open(f"{name}.tsv", "w") as f:
        f.write(f"# source: {source}\n")
        for ts, level, line in rows:
            assert "\t" not in line and "\n" not in line
            f.write(f"{ts}\t{level}\t{line}\n")
print(len(files), "formats,", sum(len(r) for _, r in files.values()), "lines")
