//! The README is a test (issue 21): its quick start is run command by
//! command, as a newcomer runs it, against the server `make run` starts,
//! and every answer is checked against what the README says it answers.
//!
//! - The server is `make run`'s own command line, read with `make -n run`
//!   (so a change of the Makefile is what runs here), started from a fresh
//!   working directory with its relative `--data-dir ./data`. The suite's
//!   binary stands in for the release one: CI compiles nothing twice.
//! - `make run`'s other steps (the example plugins copied where the README
//!   reads them) run as written; `loggerhub` is put on the PATH by `make -n
//!   install`'s steps, as the README tells the user.
//! - Each command runs in bash, in the README's working directory (the
//!   repository's files it reads are there), with the variables the
//!   commands before it set. A `# → ` line under a command is its answer:
//!   `STATUS [JSON shape | text "…"]` for curl (the status comes from a
//!   `write-out` in curl's own config file, so the commands run as
//!   written), `prints "…", "…"` or `follows: …` for the CLI. A JSON shape
//!   matches when every field it shows is in the answer with that value
//!   (`…` stands for anything, `"lh_…"` for a string that starts so; an
//!   array is the answer's, item by item, unless it ends with `…`: then
//!   each item it shows must be among the answer's). `NAME=xyz...   #
//!   "a.b" of the answer above` takes the value at that path.
//! - A read that does not match yet is asked again for a while: the
//!   pipeline runs after the 202, as the README says.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a read may take to show what the README says (the pipeline,
/// the index's refresh).
const SETTLE: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The target directory the suite's binary was built in.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_loggerhub"))
        .ancestors()
        .nth(2)
        .expect("target dir")
        .to_path_buf()
}

/// The recipe of `make TARGET` with `vars`, as make prints it (`make -n`).
fn recipe(target: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new("make");
    cmd.arg("-n").arg("-C").arg(repo()).arg(target);
    for (k, v) in vars {
        cmd.arg(format!("{k}={v}"));
    }
    let out = cmd.output().expect("make -n");
    assert!(
        out.status.success(),
        "make -n {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter(|l| !l.starts_with("make"))
        .map(str::to_string)
        .collect()
}

/// A recipe line that builds (cargo, rustup): the suite built everything.
fn builds(line: &str) -> bool {
    let program = line.split_whitespace().next().unwrap_or_default();
    program.rsplit('/').next() == Some("cargo") || line.contains("rustup target")
}

/// The quick start's shell block.
fn quick_start(readme: &str) -> Vec<String> {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Quick start"))
        .expect("README has a Quick start section");
    let blocks: Vec<&str> = section.split("```sh\n").skip(1).collect();
    assert_eq!(
        blocks.len(),
        1,
        "the Quick start has one ```sh block, and this test runs it"
    );
    let block = blocks[0].split("\n```").next().unwrap_or_default();
    block.lines().map(str::to_string).collect()
}

/// One command of the block and what the README says it answers.
#[derive(Debug)]
struct Step {
    line: usize,
    command: String,
    expect: Option<String>,
}

/// Commands (continuation lines joined), each with the `# → ` line under it.
fn steps(lines: &[String]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(expect) = line.trim_start().strip_prefix("# → ") {
            let last = out.last_mut().expect("an answer under a command");
            assert!(last.expect.is_none(), "two answers for line {}", last.line);
            last.expect = Some(expect.to_string());
            i += 1;
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            i += 1;
            continue;
        }
        let start = i;
        let mut command = line.to_string();
        while continues(&command) {
            i += 1;
            command.push('\n');
            command.push_str(lines.get(i).expect("a command continues past the block").trim_end());
        }
        out.push(Step {
            line: start + 1,
            command,
            expect: None,
        });
        i += 1;
    }
    out
}

/// A command continues on the next line: a trailing `\` or `|`, or a
/// quote left open (as the shell reads it: a `#` after a blank, outside
/// quotes, starts a comment to the end of the line).
fn continues(command: &str) -> bool {
    let (code, open) = shell_code(command);
    let t = code.lines().last().unwrap_or("").trim_end();
    open || t.ends_with('\\') || t.ends_with('|')
}

/// `command` without its comments, and whether a quote is left open.
fn shell_code(command: &str) -> (String, bool) {
    let (mut single, mut double, mut comment) = (false, false, false);
    let mut prev = '\n';
    let mut code = String::new();
    for c in command.chars() {
        if comment {
            if c == '\n' {
                comment = false;
                code.push(c);
            }
            prev = c;
            continue;
        }
        match c {
            '\'' if !double => single = !single,
            '"' if !single && prev != '\\' => double = !double,
            '#' if !single && !double && prev.is_whitespace() => {
                comment = true;
                prev = c;
                continue;
            }
            _ => {}
        }
        code.push(c);
        prev = c;
    }
    (code, single || double)
}

/// `NAME=prefix...   # "path" of the answer above`.
fn placeholder(command: &str) -> Option<(String, String, String)> {
    let (code, comment) = command.split_once('#')?;
    let (name, value) = code.trim().split_once('=')?;
    let prefix = value.strip_suffix("...")?;
    let path = comment
        .trim()
        .strip_prefix('"')?
        .split_once("\" of the answer above")?
        .0;
    Some((name.to_string(), prefix.to_string(), path.to_string()))
}

fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(k),
    })
}

/// The README's JSON shape as JSON: `…` for a field's value or an array's
/// items becomes the string "…"; `…` among an object's fields goes (an
/// object's fields are matched as a subset anyway).
fn shape(text: &str) -> Value {
    let mut out = String::new();
    let mut stack = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                stack.push(c);
                out.push(c);
            }
            '}' | ']' => {
                stack.pop();
                out.push(c);
            }
            '…' if stack.last() == Some(&'{') && !out.trim_end().ends_with(':') => {
                let kept = out.trim_end().trim_end_matches(',').len();
                out.truncate(kept);
            }
            '…' => out.push_str("\"…\""),
            _ => out.push(c),
        }
    }
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("README shape {text:?} is not JSON ({e}): {out}"))
}

/// Whether `actual` has what `expected` shows.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(e), _) if e == "…" => true,
        (Value::String(e), Value::String(a)) => match e.strip_suffix('…') {
            Some(prefix) => a.starts_with(prefix),
            None => e == a,
        },
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (Value::Object(e), Value::Object(a)) => e.iter().all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av))),
        (Value::Array(e), Value::Array(a)) => match e.split_last() {
            // `[x, y, …]`: x and y are among the answer's items.
            Some((last, shown)) if last.as_str() == Some("…") => {
                shown.iter().all(|ev| a.iter().any(|av| matches(ev, av)))
            }
            // `[x, y]`: the answer's items are x and y, in order.
            _ => e.len() == a.len() && e.iter().zip(a).all(|(ev, av)| matches(ev, av)),
        },
        (e, a) => e == a,
    }
}

/// What a `# → ` line says: the status and what the body must hold.
#[derive(Debug)]
enum Answer {
    Http { status: u16, body: Body },
    Prints(Vec<String>),
    Follows,
}

#[derive(Debug)]
enum Body {
    None,
    Json(Value),
    Text(String),
}

fn answer(text: &str) -> Answer {
    if let Some(rest) = text.strip_prefix("prints ") {
        return Answer::Prints(quoted(rest));
    }
    if text.starts_with("follows") {
        return Answer::Follows;
    }
    let (status, rest) = text.split_once(' ').unwrap_or((text, ""));
    let status = status
        .parse()
        .unwrap_or_else(|_| panic!("answer {text:?}: a status first"));
    let rest = rest.trim();
    let body = if rest.is_empty() {
        Body::None
    } else if let Some(t) = rest.strip_prefix("text ") {
        Body::Text(quoted(t).concat())
    } else {
        Body::Json(shape(rest))
    };
    Answer::Http { status, body }
}

/// The strings in `"a", "b"`.
fn quoted(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// Where the quick start runs: a fresh directory holding what the README
/// reads from the repository's root, the state of its shell variables,
/// and curl's config.
struct Shell {
    cwd: PathBuf,
    state: PathBuf,
    curl_home: PathBuf,
    path: String,
    names: Vec<String>,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn bash(&self, command: &str) -> Command {
        let names = self.names.join(" ");
        let script = format!(
            "set -o pipefail\n. {state}\n{command}\nrc=$?\n{{ declare -p {names}; }} > {state}.new 2>/dev/null; mv {state}.new {state}\nexit $rc",
            state = self.state.display()
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(script)
            .current_dir(&self.cwd)
            .env_clear()
            .env("HOME", &self.cwd)
            .env("PATH", &self.path)
            .env("CURL_HOME", &self.curl_home)
            .env("NO_COLOR", "1");
        cmd
    }

    fn run(&self, command: &str) -> Run {
        let out = self.bash(command).output().expect("bash");
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn set(&self, name: &str, value: &str) {
        let mut state = std::fs::read_to_string(&self.state).unwrap_or_default();
        let quoted = value.replace('\'', "'\\''");
        state.push_str(&format!("\n{name}='{quoted}'\n"));
        std::fs::write(&self.state, state).expect("state");
    }
}

/// curl's answer: the body, then the status on the last line (the
/// `write-out` of CURL_HOME/.curlrc).
fn split_status(stdout: &str) -> (u16, &str) {
    let trimmed = stdout.trim_end_matches('\n');
    let (body, status) = trimmed.rsplit_once('\n').unwrap_or(("", trimmed));
    (status.trim().parse().unwrap_or(0), body)
}

/// A command that only reads: safe to ask again. (A curl with `-G` sends
/// its data in the query; any other way of sending a body or a method
/// makes it a write.)
fn is_read(command: &str) -> bool {
    let (c, _) = shell_code(command.trim_start());
    let words: Vec<&str> = c.split_whitespace().collect();
    let writes = ["-X", "-d", "-F", "-T", "--json", "--form", "--upload-file", "--request"];
    let sends = |w: &&str| writes.iter().any(|f| w.starts_with(f)) || w.starts_with("--data");
    (words.first() == Some(&"curl") && (words.contains(&"-G") || !words.iter().any(sends)))
        || c.starts_with("loggerhub search")
}

#[test]
fn the_quick_start_works_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let block = quick_start(&readme);
    let steps = steps(&block);
    assert!(steps.len() > 20, "the quick start lost its commands: {steps:?}");

    // The directory the newcomer works in: the repository's `examples`,
    // which the README reads, as links to its files; `make run` writes
    // beside them here, not into the repository.
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path().join("loggerhub");
    mirror(&repo().join("examples"), &cwd.join("examples"));

    // `make run`, as written, with the suite's binary for the release one.
    let target = target_dir();
    let target_str = target.to_str().expect("utf-8 path");
    let release = format!("{target_str}/release/loggerhub");
    let binary = env!("CARGO_BIN_EXE_loggerhub");
    let defaults = recipe("run", &[("CARGO_TARGET_DIR", target_str)]);
    let default_serve = defaults.last().expect("a serve line");
    let default_listen = default_serve
        .split_whitespace()
        .skip_while(|w| *w != "--listen")
        .nth(1)
        .expect("make run names --listen");
    let run = recipe("run", &[("CARGO_TARGET_DIR", target_str), ("LISTEN", "127.0.0.1:0")]);
    let (serve, steps_before) = run.split_last().expect("make run has a recipe");
    assert!(
        serve.starts_with(&release) && serve.contains(" serve "),
        "make run's last step serves: {serve}"
    );
    assert!(
        serve.contains("--data-dir ./data"),
        "make run's data dir is ./data: {serve}"
    );
    for step in steps_before.iter().filter(|l| !builds(l)) {
        let status = Command::new("bash")
            .arg("-c")
            .arg(step)
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .status()
            .expect("bash");
        assert!(status.success(), "make run's step failed: {step}");
    }
    let serve = serve.replacen(&release, binary, 1);
    let mut server = KillOnDrop(
        Command::new("bash")
            .arg("-c")
            .arg(format!("exec {serve}"))
            .current_dir(&cwd)
            // A newcomer's shell: none of the suite's settings.
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &cwd)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("make run's server"),
    );
    let mut first = String::new();
    let mut stdout = BufReader::new(server.0.stdout.take().expect("stdout"));
    stdout.read_line(&mut first).expect("the server's first line");
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("the server's first line names its URL: {first:?}"))
        .to_string();
    // A newcomer starts once `make run` says it serves: /health answers.
    let up = Instant::now() + Duration::from_secs(60);
    while !Command::new("curl")
        .args(["-sf", "-o", "/dev/null", &format!("{url}/health")])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(Instant::now() < up, "make run's server did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }

    // `make install`, as the README tells the user, into a prefix of ours.
    let prefix = dir.path().join("prefix");
    let prefix_str = prefix.to_str().expect("utf-8 path");
    for step in recipe("install", &[("CARGO_TARGET_DIR", target_str), ("PREFIX", prefix_str)])
        .iter()
        .filter(|l| !builds(l))
    {
        let step = step.replace(&release, binary);
        let status = Command::new("bash").arg("-c").arg(&step).status().expect("bash");
        assert!(status.success(), "make install's step failed: {step}");
    }
    assert!(
        prefix.join("bin/loggerhub").is_file(),
        "make install put no loggerhub in PREFIX/bin"
    );

    let curl_home = dir.path().join("curl");
    std::fs::create_dir(&curl_home).expect("curl home");
    std::fs::write(
        curl_home.join(".curlrc"),
        "write-out = \"\\n%{http_code}\\n\"\nmax-time = 30\n",
    )
    .expect("curlrc");
    let state = dir.path().join("state.sh");
    std::fs::write(&state, "").expect("state");
    let names: BTreeSet<String> = steps
        .iter()
        .filter_map(|s| {
            let c = s.command.trim_start().trim_start_matches("export ");
            let (first, _) = c.split_once('=')?;
            first
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_')
                .then(|| first.to_string())
        })
        .chain(["LOGGERHUB_URL".to_string(), "LOGGERHUB_API_KEY".to_string()])
        .collect();
    let shell = Shell {
        cwd: cwd.clone(),
        state,
        curl_home,
        path: format!("{}/bin:{}", prefix_str, std::env::var("PATH").unwrap_or_default()),
        names: names.into_iter().collect(),
    };

    let mut last_json = Value::Null;
    for step in &steps {
        let command = step.command.trim();
        let at = format!("README quick start, line {}: {command}", step.line);
        if let Some((name, prefix, path)) = placeholder(command) {
            let value = at_path(&last_json, &path)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{at}: no string at {path:?} in {last_json}"));
            assert!(
                value.starts_with(&prefix),
                "{at}: {value:?} does not start with {prefix:?}"
            );
            shell.set(&name, value);
            continue;
        }
        if command.starts_with("URL=") {
            assert_eq!(
                command,
                format!("URL=http://{default_listen}"),
                "the README's URL is where make run listens"
            );
            shell.set("URL", &url);
            continue;
        }
        let Some(expect) = &step.expect else {
            assert!(
                !command.contains("curl") && !command.contains("loggerhub "),
                "{at}: the README shows no answer for this command"
            );
            let r = shell.run(command);
            assert!(r.ok, "{at}: {}", r.stderr);
            continue;
        };
        match answer(expect) {
            Answer::Http { status, body } => {
                let deadline = Instant::now() + SETTLE;
                loop {
                    let r = shell.run(command);
                    let (got, text) = split_status(&r.stdout);
                    let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                    let problem = if !r.ok {
                        Some("the command failed".to_string())
                    } else if got != status {
                        Some(format!("status {got}, the README says {status}"))
                    } else {
                        match &body {
                            Body::None => (!text.is_empty()).then(|| "a body where the README shows none".into()),
                            Body::Text(t) => (!text.contains(t.as_str())).then(|| format!("no {t:?} in the answer")),
                            Body::Json(shape) => {
                                (!matches(shape, &parsed)).then(|| format!("the answer is not {shape}"))
                            }
                        }
                    };
                    match problem {
                        None => {
                            last_json = parsed;
                            break;
                        }
                        Some(p) if !is_read(command) || Instant::now() > deadline => {
                            panic!("{at}\n{p}\nanswer: {text}\nstderr: {}", r.stderr)
                        }
                        Some(_) => std::thread::sleep(Duration::from_millis(250)),
                    }
                }
            }
            Answer::Prints(texts) => {
                let deadline = Instant::now() + SETTLE;
                loop {
                    let r = shell.run(command);
                    let missing: Vec<&String> = texts.iter().filter(|t| !r.stdout.contains(t.as_str())).collect();
                    if r.ok && missing.is_empty() {
                        break;
                    }
                    assert!(
                        is_read(command) && Instant::now() < deadline,
                        "{at}\nexit ok: {}, missing {missing:?}\nstdout: {}\nstderr: {}",
                        r.ok,
                        r.stdout,
                        r.stderr
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
            Answer::Follows => follows(&shell, command, &at),
        }
    }
}

/// A command that follows new logs until stopped (`loggerhub tail`): it
/// must print a matching log sent while it runs, and never one of another
/// service or level sent just before it.
fn follows(shell: &Shell, command: &str, at: &str) {
    let mut child = shell
        .bash(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follow");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let post = |service: &str, level: &str, message: &str| {
        let r = shell.run(&format!(
            "curl -s -o /dev/null -X POST $URL/v1/logs -H \"Authorization: Bearer $KEY\" \
             -d '{{\"service\":\"{service}\",\"level\":\"{level}\",\"message\":\"{message}\"}}'"
        ));
        assert!(r.ok, "{at}: sending a log to follow failed: {}", r.stderr);
    };
    let deadline = Instant::now() + SETTLE;
    let mut printed = Vec::new();
    let mut n = 0;
    // Sent again each second: the tail may still be connecting. The logs
    // it must not show go first, so they would be printed before the one
    // it must.
    let found = 'outer: loop {
        n += 1;
        post("billing", "info", &format!("quiet level {n}"));
        post("shipping", "error", &format!("other service {n}"));
        post("billing", "error", &format!("followed {n}"));
        let until = Instant::now() + Duration::from_secs(1);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains("followed");
                    printed.push(line);
                    if hit {
                        break 'outer true;
                    }
                }
                Err(_) => break,
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    // A poll later, nothing else arrived either.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(1500)) {
        printed.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "{at}: nothing followed in {SETTLE:?}; it printed {printed:?}");
    let wrong: Vec<&String> = printed
        .iter()
        .filter(|l| l.contains("quiet level") || l.contains("other service"))
        .collect();
    assert!(wrong.is_empty(), "{at}: printed logs it does not follow: {wrong:?}");
}

/// `to` as `from`: its folders made, its files linked.
fn mirror(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            mirror(&entry.path(), &target);
        } else {
            std::os::unix::fs::symlink(entry.path(), target).expect("link");
        }
    }
}

/// The server, stopped however the test ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
