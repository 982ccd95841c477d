//! The `scimd` binary as a child process: started on a free port with the given
//! environment, killed when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_scimd");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `scimd` with a clean environment for the database at `db`.
pub fn command(db: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("SCIMD_DATABASE_URL", db).env_remove("SCIMD_BOOTSTRAP_TOKEN").env_remove("SCIMD_CONFIG");
    c
}

pub struct Scimd {
    pub child: Child,
    pub port: u16,
}

impl Scimd {
    /// `scimd serve` on a free port with bootstrap token `token` and extra environment;
    /// returns once it accepts connections. Its log goes to `log` when given.
    pub fn serve(db: &str, token: &str, env: &[(&str, &str)], log: Option<&std::path::Path>) -> Scimd {
        let port = free_port();
        let mut cmd = command(db);
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("SCIMD_BOOTSTRAP_TOKEN", token)
            .env("SCIMD_LOG_LEVEL", "warn")
            .stdout(Stdio::null());
        match log {
            Some(path) => cmd.stderr(std::fs::File::create(path).unwrap()),
            None => cmd.stderr(Stdio::null()),
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "scimd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Scimd { child, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/scim/v2", self.port)
    }

    /// Creates a user through the SCIM API with `token`; its id.
    pub async fn user(&self, token: &str, user_name: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/Users", self.base()))
            .bearer_auth(token)
            .json(
                &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
    }

    pub fn root(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
    }

    /// Waits up to `limit` for the process to exit; its exit status, or None.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Resident memory now and at its peak, in KiB (`/proc/PID/status`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Scimd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
